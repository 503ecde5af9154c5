package sysproxy

import (
	"net/url"
	"unsafe"

	"golang.org/x/sys/windows"
)

// The person's Internet Options proxy (what Edge and Chrome use on
// Windows), read with WinHTTP; a PAC file, whether found by auto-detect
// (WPAD) or named by an auto-config URL, is evaluated by WinHTTP itself.

var (
	winhttp         = windows.NewLazySystemDLL("winhttp.dll")
	procIEConfig    = winhttp.NewProc("WinHttpGetIEProxyConfigForCurrentUser")
	procOpen        = winhttp.NewProc("WinHttpOpen")
	procClose       = winhttp.NewProc("WinHttpCloseHandle")
	procProxyForURL = winhttp.NewProc("WinHttpGetProxyForUrl")
	procGlobalFree  = windows.NewLazySystemDLL("kernel32.dll").NewProc("GlobalFree")
)

const (
	accessNoProxy     = 1 // WINHTTP_ACCESS_TYPE_NO_PROXY
	accessNamedProxy  = 3 // WINHTTP_ACCESS_TYPE_NAMED_PROXY
	autoDetect        = 1 // WINHTTP_AUTOPROXY_AUTO_DETECT
	autoConfigURL     = 2 // WINHTTP_AUTOPROXY_CONFIG_URL
	detectDHCPAndDNSA = 1 | 2
)

// WINHTTP_CURRENT_USER_IE_PROXY_CONFIG
type ieConfig struct {
	AutoDetect    int32
	AutoConfigURL *uint16
	Proxy         *uint16
	ProxyBypass   *uint16
}

// WINHTTP_AUTOPROXY_OPTIONS
type autoProxyOptions struct {
	Flags                 uint32
	AutoDetectFlags       uint32
	AutoConfigURL         *uint16
	reserved              uintptr
	dwReserved            uint32
	AutoLogonIfChallenged int32
}

// WINHTTP_PROXY_INFO
type proxyInfo struct {
	AccessType  uint32
	Proxy       *uint16
	ProxyBypass *uint16
}

func str(p *uint16) string {
	if p == nil {
		return ""
	}
	return windows.UTF16PtrToString(p)
}

func free(p *uint16) {
	if p != nil {
		procGlobalFree.Call(uintptr(unsafe.Pointer(p)))
	}
}

func platformProxy(u *url.URL) (*url.URL, error) {
	if procIEConfig.Find() != nil {
		return nil, nil // no WinHTTP: direct
	}
	var ie ieConfig
	if r, _, _ := procIEConfig.Call(uintptr(unsafe.Pointer(&ie))); r == 0 {
		return nil, nil // no settings for this account: direct
	}
	defer func() { free(ie.AutoConfigURL); free(ie.Proxy); free(ie.ProxyBypass) }()
	if ie.AutoDetect != 0 || ie.AutoConfigURL != nil {
		if p, ok := fromPAC(u, ie); ok {
			return p, nil
		}
		// No PAC could be found or run: the browser falls back to the
		// manual settings, and so do we.
	}
	if ie.Proxy == nil || Bypassed(str(ie.ProxyBypass), u.Host) {
		return nil, nil
	}
	return ParseList(str(ie.Proxy), u.Scheme), nil
}

func fromPAC(u *url.URL, ie ieConfig) (*url.URL, bool) {
	agent, _ := windows.UTF16PtrFromString("Detour")
	h, _, _ := procOpen.Call(uintptr(unsafe.Pointer(agent)), accessNoProxy, 0, 0, 0)
	if h == 0 {
		return nil, false
	}
	defer procClose.Call(h)
	opts := autoProxyOptions{AutoLogonIfChallenged: 1}
	if ie.AutoConfigURL != nil {
		opts.Flags |= autoConfigURL
		opts.AutoConfigURL = ie.AutoConfigURL
	}
	if ie.AutoDetect != 0 {
		opts.Flags |= autoDetect
		opts.AutoDetectFlags = detectDHCPAndDNSA
	}
	target, err := windows.UTF16PtrFromString(u.String())
	if err != nil {
		return nil, false
	}
	var info proxyInfo
	if r, _, _ := procProxyForURL.Call(h, uintptr(unsafe.Pointer(target)), uintptr(unsafe.Pointer(&opts)), uintptr(unsafe.Pointer(&info))); r == 0 {
		return nil, false
	}
	defer func() { free(info.Proxy); free(info.ProxyBypass) }()
	if info.AccessType != accessNamedProxy || info.Proxy == nil || Bypassed(str(info.ProxyBypass), u.Host) {
		return nil, true
	}
	return ParseList(str(info.Proxy), u.Scheme), true
}
