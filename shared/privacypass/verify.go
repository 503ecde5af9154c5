package privacypass

import (
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"

	"filippo.io/bigmod"
)

// The hub verifies one token per report, and the standard library's
// rsa.VerifyPSS spends about 40% of each call rebuilding the modulus's
// Montgomery constants (bigmod.NewModulus) from the public key. This file
// does the same RSASSA-PSS verification (RFC 8017, sections 8.1.2 and
// 9.1.2; SHA-384, MGF1-SHA-384, 48-byte salt) with the modulus prepared
// once per key, using filippo.io/bigmod, the standard library's own
// constant-time arithmetic exported as a module. verify_test.go checks it
// against rsa.VerifyPSS on valid, corrupted and out-of-range signatures.

// newModulus prepares n for verification; nil if it cannot be (Verify then
// falls back to rsa.VerifyPSS).
func newModulus(nBytes []byte) *bigmod.Modulus {
	m, err := bigmod.NewModulus(nBytes)
	if err != nil {
		return nil
	}
	return m
}

// errPSS is any verification failure; Verify reports ErrBadSignature.
var errPSS = errors.New("privacypass: PSS verification failed")

// verifyPSS384 checks sig over digest (SHA-384 of the message) under the
// modulus n and public exponent e, with a 48-byte salt.
func verifyPSS384(n *bigmod.Modulus, e int, digest, sig []byte) error {
	k := n.Size()
	if len(sig) != k || e <= 1 {
		return errPSS
	}
	// RSAVP1: s must be below n (SetBytes refuses it otherwise).
	s, err := bigmod.NewNat().SetBytes(sig, n)
	if err != nil {
		return errPSS
	}
	em := bigmod.NewNat().ExpShortVarTime(s, uint(e), n).Bytes(n)
	emBits := n.BitLen() - 1
	emLen := (emBits + 7) / 8
	for len(em) > emLen {
		if em[0] != 0 {
			return errPSS
		}
		em = em[1:]
	}
	return emsaPSSVerify384(digest, em, emBits, 48)
}

// emsaPSSVerify384 is EMSA-PSS-VERIFY (RFC 8017, section 9.1.2) with
// SHA-384 and MGF1-SHA-384. It changes em.
func emsaPSSVerify384(mHash, em []byte, emBits, sLen int) error {
	const hLen = sha512.Size384
	emLen := len(em)
	if len(mHash) != hLen || emLen < hLen+sLen+2 || em[emLen-1] != 0xbc {
		return errPSS
	}
	db, h := em[:emLen-hLen-1], em[emLen-hLen-1:emLen-1]
	bitMask := byte(0xff >> (8*emLen - emBits))
	if em[0]&^bitMask != 0 {
		return errPSS
	}
	mgf1XOR384(db, h)
	db[0] &= bitMask
	psLen := emLen - hLen - sLen - 2
	for _, b := range db[:psLen] {
		if b != 0 {
			return errPSS
		}
	}
	if db[psLen] != 0x01 {
		return errPSS
	}
	salt := db[len(db)-sLen:]
	// H' = Hash(0x00 × 8 || mHash || salt)
	hh := sha512.New384()
	var zeros [8]byte
	hh.Write(zeros[:])
	hh.Write(mHash)
	hh.Write(salt)
	if subtle.ConstantTimeCompare(hh.Sum(nil), h) != 1 {
		return errPSS
	}
	return nil
}

// mgf1XOR384 XORs out with MGF1-SHA-384(seed, len(out)).
func mgf1XOR384(out, seed []byte) {
	var counter [4]byte
	var digest []byte
	done := 0
	for done < len(out) {
		hh := sha512.New384()
		hh.Write(seed)
		hh.Write(counter[:])
		digest = hh.Sum(digest[:0])
		for i := 0; i < len(digest) && done < len(out); i++ {
			out[done] ^= digest[i]
			done++
		}
		binary.BigEndian.PutUint32(counter[:], binary.BigEndian.Uint32(counter[:])+1)
	}
}
