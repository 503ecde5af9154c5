// Package privacypass implements the publicly verifiable Privacy Pass token
// of RFC 9578 (token type 0x0002, Blind RSA 2048 with the
// RSABSSA-SHA384-PSS-Deterministic variant of RFC 9474), as Detour uses it for
// anonymous reports: the hub (issuer) blind-signs token requests for an
// enrolled device without seeing the token, and later verifies the token that
// comes with a report without being able to tell which device it was issued
// to. See README.md for the wire formats and Detour's challenge.
package privacypass

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"filippo.io/bigmod"
	"github.com/cloudflare/circl/blindsign/blindrsa"
)

// TokenType is RFC 9578's "Blind RSA (2048-bit)" token type.
const TokenType uint16 = 0x0002

// Sizes fixed by token type 0x0002.
const (
	Nk         = 256 // authenticator (RSA-2048 signature) length
	Nid        = 32  // token key id length: SHA-256 of the issuer key
	NonceSize  = 32
	tokenSize  = 2 + NonceSize + 32 + Nid + Nk
	requestLen = 2 + 1 + Nk
	keyBits    = 2048
)

// OriginInfo is the origin_info of every challenge Detour's tokens answer:
// the one "origin" that redeems them is the hub's report collector.
const OriginInfo = "detour-reports"

// Errors a verifier returns; callers test them with errors.Is.
var (
	ErrMalformed    = errors.New("privacypass: malformed")
	ErrWrongType    = errors.New("privacypass: wrong token type")
	ErrWrongKey     = errors.New("privacypass: token is not for this issuer key")
	ErrWrongContext = errors.New("privacypass: token answers a different challenge")
	ErrBadSignature = errors.New("privacypass: token signature does not verify")
)

// TokenChallenge is RFC 9577 §2.1.1's challenge. Its digest is bound into
// every token, so it must be the same for every device: Detour uses an empty
// redemption_context, because anything per-report or per-device there would
// either need a token minted on the spot (fetching lined up with spending) or
// make tokens linkable.
type TokenChallenge struct {
	TokenType         uint16
	IssuerName        string
	RedemptionContext []byte // empty or exactly 32 bytes
	OriginInfo        string // may list several origins separated by ","
}

// ReportChallenge is the challenge of every Detour report token issued by the
// hub named issuerName.
func ReportChallenge(issuerName string) TokenChallenge {
	return TokenChallenge{TokenType: TokenType, IssuerName: issuerName, OriginInfo: OriginInfo}
}

// Marshal encodes the challenge in the TLS presentation language form.
func (c TokenChallenge) Marshal() ([]byte, error) {
	if len(c.IssuerName) == 0 || len(c.IssuerName) > 0xffff || len(c.OriginInfo) > 0xffff {
		return nil, fmt.Errorf("%w: challenge name lengths", ErrMalformed)
	}
	if n := len(c.RedemptionContext); n != 0 && n != 32 {
		return nil, fmt.Errorf("%w: redemption_context is %d bytes, want 0 or 32", ErrMalformed, n)
	}
	b := binary.BigEndian.AppendUint16(nil, c.TokenType)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.IssuerName)))
	b = append(b, c.IssuerName...)
	b = append(b, byte(len(c.RedemptionContext)))
	b = append(b, c.RedemptionContext...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(c.OriginInfo)))
	b = append(b, c.OriginInfo...)
	return b, nil
}

// UnmarshalTokenChallenge decodes a challenge, refusing trailing bytes.
func UnmarshalTokenChallenge(b []byte) (TokenChallenge, error) {
	var c TokenChallenge
	r := reader{b: b}
	c.TokenType = r.u16()
	c.IssuerName = string(r.bytes(int(r.u16())))
	c.RedemptionContext = r.bytes(int(r.u8()))
	c.OriginInfo = string(r.bytes(int(r.u16())))
	if r.err || len(r.b) != 0 || c.IssuerName == "" {
		return TokenChallenge{}, fmt.Errorf("%w: token challenge", ErrMalformed)
	}
	if n := len(c.RedemptionContext); n != 0 && n != 32 {
		return TokenChallenge{}, fmt.Errorf("%w: redemption_context is %d bytes", ErrMalformed, n)
	}
	return c, nil
}

// Digest is SHA-256 of the encoded challenge, the token's challenge_digest.
func (c TokenChallenge) Digest() ([32]byte, error) {
	b, err := c.Marshal()
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(b), nil
}

// Token is RFC 9578's token for type 0x0002.
type Token struct {
	TokenType       uint16
	Nonce           [NonceSize]byte
	ChallengeDigest [32]byte
	TokenKeyID      [Nid]byte
	Authenticator   []byte // Nk bytes
}

// AuthenticatorInput is what the issuer's key signs: every field but the
// authenticator.
func (t Token) AuthenticatorInput() []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, tokenSize-Nk), t.TokenType)
	b = append(b, t.Nonce[:]...)
	b = append(b, t.ChallengeDigest[:]...)
	return append(b, t.TokenKeyID[:]...)
}

// Marshal encodes the token.
func (t Token) Marshal() []byte {
	return append(t.AuthenticatorInput(), t.Authenticator...)
}

// UnmarshalToken decodes a type 0x0002 token of exactly the right length.
func UnmarshalToken(b []byte) (Token, error) {
	if len(b) != tokenSize {
		return Token{}, fmt.Errorf("%w: token is %d bytes, want %d", ErrMalformed, len(b), tokenSize)
	}
	var t Token
	t.TokenType = binary.BigEndian.Uint16(b)
	if t.TokenType != TokenType {
		return Token{}, fmt.Errorf("%w: %#04x", ErrWrongType, t.TokenType)
	}
	copy(t.Nonce[:], b[2:])
	copy(t.ChallengeDigest[:], b[2+NonceSize:])
	copy(t.TokenKeyID[:], b[2+NonceSize+32:])
	t.Authenticator = bytes.Clone(b[tokenSize-Nk:])
	return t, nil
}

// TokenRequest is what the client sends to the issuer: the blinded token
// input and the last byte of the key id (so the issuer can pick its key).
type TokenRequest struct {
	TokenType           uint16
	TruncatedTokenKeyID uint8
	BlindedMsg          []byte // Nk bytes
}

// Marshal encodes the request.
func (r TokenRequest) Marshal() []byte {
	b := binary.BigEndian.AppendUint16(make([]byte, 0, requestLen), r.TokenType)
	b = append(b, r.TruncatedTokenKeyID)
	return append(b, r.BlindedMsg...)
}

// UnmarshalTokenRequest decodes a type 0x0002 request.
func UnmarshalTokenRequest(b []byte) (TokenRequest, error) {
	if len(b) != requestLen {
		return TokenRequest{}, fmt.Errorf("%w: token request is %d bytes, want %d", ErrMalformed, len(b), requestLen)
	}
	r := TokenRequest{TokenType: binary.BigEndian.Uint16(b), TruncatedTokenKeyID: b[2], BlindedMsg: bytes.Clone(b[3:])}
	if r.TokenType != TokenType {
		return TokenRequest{}, fmt.Errorf("%w: %#04x", ErrWrongType, r.TokenType)
	}
	return r, nil
}

// PublicKey is an issuer public key with its RFC 9578 encoding (a DER
// SubjectPublicKeyInfo with the RSASSA-PSS OID and SHA-384 parameters) and
// key id (SHA-256 of that encoding).
type PublicKey struct {
	RSA *rsa.PublicKey
	DER []byte
	ID  [Nid]byte

	n *bigmod.Modulus // RSA.N prepared once for Verify (verify.go); nil: use rsa.VerifyPSS
}

var (
	oidRSASSAPSS = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 10}
	oidMGF1      = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 1, 8}
	oidSHA384    = asn1.ObjectIdentifier{2, 16, 840, 1, 101, 3, 4, 2, 2}
)

type algID struct{ Algorithm asn1.ObjectIdentifier }
type mgfAlgID struct {
	Algorithm asn1.ObjectIdentifier
	Hash      algID
}
type pssParams struct {
	Hash       algID    `asn1:"explicit,tag:0"`
	MGF        mgfAlgID `asn1:"explicit,tag:1"`
	SaltLength int      `asn1:"explicit,tag:2"`
}
type pssAlgID struct {
	Algorithm asn1.ObjectIdentifier
	Params    pssParams
}
type spki struct {
	Algorithm pssAlgID
	PublicKey asn1.BitString
}

// NewPublicKey encodes pk the RFC 9578 way and derives its key id.
func NewPublicKey(pk *rsa.PublicKey) (*PublicKey, error) {
	if pk == nil || pk.N.BitLen() != keyBits {
		return nil, fmt.Errorf("%w: issuer key must be RSA-%d", ErrMalformed, keyBits)
	}
	pkcs1 := x509.MarshalPKCS1PublicKey(pk)
	der, err := asn1.Marshal(spki{
		Algorithm: pssAlgID{Algorithm: oidRSASSAPSS, Params: pssParams{
			Hash:       algID{oidSHA384},
			MGF:        mgfAlgID{Algorithm: oidMGF1, Hash: algID{oidSHA384}},
			SaltLength: 48,
		}},
		PublicKey: asn1.BitString{Bytes: pkcs1, BitLength: 8 * len(pkcs1)},
	})
	if err != nil {
		return nil, fmt.Errorf("privacypass: encode issuer key: %w", err)
	}
	return &PublicKey{RSA: pk, DER: der, ID: sha256.Sum256(der), n: newModulus(pk.N.Bytes())}, nil
}

// ParsePublicKey decodes an RFC 9578 issuer key. Anything but the exact
// encoding NewPublicKey produces is refused, so that one key has one id.
func ParsePublicKey(der []byte) (*PublicKey, error) {
	var s spki
	rest, err := asn1.Unmarshal(der, &s)
	if err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: issuer key is not a SubjectPublicKeyInfo", ErrMalformed)
	}
	pk, err := x509.ParsePKCS1PublicKey(s.PublicKey.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: issuer key: %v", ErrMalformed, err)
	}
	p, err := NewPublicKey(pk)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p.DER, der) {
		return nil, fmt.Errorf("%w: issuer key is not an RSASSA-PSS SHA-384 key", ErrMalformed)
	}
	return p, nil
}

// Issuer signs blinded token requests with one private key.
type Issuer struct {
	key    *PublicKey
	signer *crtSigner // sign.go
}

// NewIssuer wraps an RSA-2048 private key.
func NewIssuer(sk *rsa.PrivateKey) (*Issuer, error) {
	pk, err := NewPublicKey(&sk.PublicKey)
	if err != nil {
		return nil, err
	}
	signer, err := newCRTSigner(sk)
	if err != nil {
		return nil, err
	}
	return &Issuer{key: pk, signer: signer}, nil
}

// PublicKey is the issuer's published key.
func (i *Issuer) PublicKey() *PublicKey { return i.key }

// Sign answers one encoded TokenRequest with the encoded TokenResponse (the
// blind signature). It refuses a request for another key.
func (i *Issuer) Sign(request []byte) ([]byte, error) {
	req, err := UnmarshalTokenRequest(request)
	if err != nil {
		return nil, err
	}
	if req.TruncatedTokenKeyID != i.key.ID[Nid-1] {
		return nil, ErrWrongKey
	}
	sig, err := i.signer.sign(req.BlindedMsg)
	if err != nil {
		return nil, fmt.Errorf("%w: blind sign: %v", ErrMalformed, err)
	}
	return sig, nil
}

// Client makes token requests for one issuer key and finalises the answers.
type Client struct {
	key *PublicKey
	c   blindrsa.Client
}

// NewClient prepares requests for the issuer key pk.
func NewClient(pk *PublicKey) (*Client, error) {
	c, err := blindrsa.NewClient(blindrsa.SHA384PSSDeterministic, pk.RSA)
	if err != nil {
		return nil, fmt.Errorf("privacypass: client: %w", err)
	}
	return &Client{key: pk, c: c}, nil
}

// Pending is one request's secret state until its response arrives. It
// cannot be serialised (the blinding factor stays in memory), so a client
// finalises right after the issuer answers and keeps finished tokens.
type Pending struct {
	token Token
	state blindrsa.State
}

// Request makes a blinded token request answering challenge, with a fresh
// random nonce.
func (c *Client) Request(random io.Reader, challenge TokenChallenge) ([]byte, *Pending, error) {
	digest, err := challenge.Digest()
	if err != nil {
		return nil, nil, err
	}
	t := Token{TokenType: TokenType, ChallengeDigest: digest, TokenKeyID: c.key.ID}
	if _, err := io.ReadFull(random, t.Nonce[:]); err != nil {
		return nil, nil, fmt.Errorf("privacypass: nonce: %w", err)
	}
	blinded, state, err := c.c.Blind(random, t.AuthenticatorInput())
	if err != nil {
		return nil, nil, fmt.Errorf("privacypass: blind: %w", err)
	}
	req := TokenRequest{TokenType: TokenType, TruncatedTokenKeyID: c.key.ID[Nid-1], BlindedMsg: blinded}
	return req.Marshal(), &Pending{token: t, state: state}, nil
}

// Finalize unblinds the issuer's response into a token and checks it.
func (c *Client) Finalize(p *Pending, response []byte) (Token, error) {
	sig, err := c.c.Finalize(p.state, response)
	if err != nil {
		return Token{}, fmt.Errorf("%w: finalize: %v", ErrBadSignature, err)
	}
	t := p.token
	t.Authenticator = sig
	return t, nil
}

// Verify checks that tok answers challenge, names pk, and carries pk's
// signature over its other fields.
func Verify(pk *PublicKey, tok Token, challenge TokenChallenge) error {
	if tok.TokenType != TokenType {
		return ErrWrongType
	}
	if tok.TokenKeyID != pk.ID {
		return ErrWrongKey
	}
	digest, err := challenge.Digest()
	if err != nil {
		return err
	}
	if tok.ChallengeDigest != digest {
		return ErrWrongContext
	}
	if len(tok.Authenticator) != Nk {
		return fmt.Errorf("%w: authenticator length", ErrMalformed)
	}
	// RSABSSA-SHA384-PSS-Deterministic's verification is plain RSASSA-PSS
	// (SHA-384, MGF1-SHA-384, 48-byte salt) of the message (RFC 9474,
	// section 4.5). The standard library's constant-time arithmetic does it
	// in about half the time of circl's math/big verifier, and with the
	// modulus prepared once per key (verify.go) in about 60% of
	// rsa.VerifyPSS's; the hub runs it once per report.
	digest384 := sha512.Sum384(tok.AuthenticatorInput())
	if pk.n != nil {
		if verifyPSS384(pk.n, pk.RSA.E, digest384[:], tok.Authenticator) != nil {
			return ErrBadSignature
		}
		return nil
	}
	if err := rsa.VerifyPSS(pk.RSA, crypto.SHA384, digest384[:], tok.Authenticator, &pssOptions); err != nil {
		return ErrBadSignature
	}
	return nil
}

// pssOptions are RFC 9578 token type 0x0002's PSS parameters.
var pssOptions = rsa.PSSOptions{SaltLength: 48, Hash: crypto.SHA384}

// reader decodes length-prefixed fields, remembering the first short read.
type reader struct {
	b   []byte
	err bool
}

func (r *reader) bytes(n int) []byte {
	if r.err || len(r.b) < n {
		r.err = true
		return nil
	}
	out := bytes.Clone(r.b[:n])
	r.b = r.b[n:]
	return out
}
func (r *reader) u8() uint8 {
	b := r.bytes(1)
	if b == nil {
		return 0
	}
	return b[0]
}
func (r *reader) u16() uint16 {
	b := r.bytes(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}
