package gate

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/attestd/attestd/verify"
)

// Errors of the client key settings. Test with errors.Is.
var (
	// ErrClientKey means a --client-key is neither remote-addr nor
	// header:NAME.
	ErrClientKey = errors.New("bad client key")
	// ErrNoTrustedProxy means header:NAME was asked for without a trusted
	// proxy range, so the header would never be honoured.
	ErrNoTrustedProxy = errors.New("a client key from a header needs at least one trusted proxy range")
	// ErrTrustedProxy means a trusted proxy range is neither a CIDR nor an
	// address.
	ErrTrustedProxy = errors.New("bad trusted proxy range")
)

// ipv6ClientBits is how much of an IPv6 address names one client: a
// /64, the least a network hands one subscriber, so that one host cannot
// take a turn for each of its 2^64 addresses.
const ipv6ClientBits = 64

// maxHops bounds how many entries of a forwarding header a client key
// looks at, right to left, so a long header costs no more than this.
const maxHops = 32

// ClientKeyFunc returns the function that names each request's client for
// the per-client share of calls to Apple (verify.MiddlewareOptions.Client),
// from spec, the --client-key setting:
//
//   - "remote-addr" (or ""): the address of the connection's peer;
//   - "header:NAME": from the header NAME (X-Forwarded-For, X-Real-IP,
//     Forwarded's for= …) when the peer is in a trusted range: the
//     right-most address in it that is not in a trusted range (the
//     address the first trusted proxy saw), or the left-most when every
//     one is trusted. A header from a peer outside every trusted range is
//     ignored, as is one that holds no usable address where it should:
//     the client is then the peer.
//
// IPv4 clients are named by their address, IPv6 clients by their /64.
// Spec "header:NAME" without trusted ranges is an error.
func ClientKeyFunc(spec string, trusted []netip.Prefix) (verify.ClientKey, error) {
	var name string
	switch {
	case spec == "" || spec == "remote-addr":
	case strings.HasPrefix(spec, "header:"):
		name = strings.TrimSpace(strings.TrimPrefix(spec, "header:"))
		if !validHeaderName(name) {
			return nil, fmt.Errorf("%w %q: header:NAME needs a header name", ErrClientKey, spec)
		}
		if len(trusted) == 0 {
			return nil, fmt.Errorf("%w: give the proxies' addresses with --trusted-proxy", ErrNoTrustedProxy)
		}
	default:
		return nil, fmt.Errorf("%w %q: want remote-addr or header:NAME", ErrClientKey, spec)
	}
	canonical := http.CanonicalHeaderKey(name)
	forwarded := strings.EqualFold(name, "Forwarded")
	return func(r *http.Request) string {
		var values []string
		if canonical != "" {
			values = r.Header.Values(canonical)
		}
		return clientName(r.RemoteAddr, values, forwarded, trusted)
	}, nil
}

// clientName is the client's name for a request from remoteAddr (the
// peer, host:port) whose client header holds values (none unless one was
// asked for); forwarded says the header is RFC 7239's Forwarded. An empty
// name, for a peer without an IP address (a Unix socket), is the shared
// unnamed client.
func clientName(remoteAddr string, values []string, forwarded bool, trusted []netip.Prefix) string {
	peer, ok := parseHost(remoteAddr)
	if !ok {
		return ""
	}
	if len(values) == 0 || !inRanges(peer, trusted) {
		return addrName(peer)
	}
	if client, ok := forwardedClient(values, forwarded, trusted); ok {
		return addrName(client)
	}
	return addrName(peer)
}

// forwardedClient walks the header's entries right to left (the order
// proxies append them) and returns the first not in a trusted range, or
// the left-most when all are. An entry that is not an address (a
// misbehaving proxy, Forwarded's "unknown" or an obfuscated name) stops
// the walk: nothing left of it can be trusted, and there is no address to
// name the client by, so ok is false.
func forwardedClient(values []string, forwarded bool, trusted []netip.Prefix) (client netip.Addr, ok bool) {
	hops := 0
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			var entry string
			if j := strings.LastIndexByte(rest, ','); j >= 0 {
				rest, entry = rest[:j], rest[j+1:]
			} else {
				rest, entry = "", rest
			}
			if strings.TrimSpace(entry) == "" {
				continue // an empty list element, which RFC 9110 allows
			}
			if hops++; hops > maxHops {
				return client, ok // all trusted so far: the left-most seen
			}
			addr, valid := parseHop(entry, forwarded)
			if !valid {
				return netip.Addr{}, false
			}
			client, ok = addr, true
			if !inRanges(addr, trusted) {
				return client, true
			}
		}
	}
	return client, ok
}

// parseHop reads one entry of a forwarding header: an address, with or
// without a port, IPv6 possibly in brackets; for Forwarded, the value of
// the element's for= parameter, possibly quoted.
func parseHop(entry string, forwarded bool) (netip.Addr, bool) {
	entry = strings.TrimSpace(entry)
	if forwarded {
		var found bool
		for pair := range strings.SplitSeq(entry, ";") {
			k, v, _ := strings.Cut(strings.TrimSpace(pair), "=")
			if strings.EqualFold(strings.TrimSpace(k), "for") {
				entry, found = strings.Trim(strings.TrimSpace(v), `"`), true
				break
			}
		}
		if !found {
			return netip.Addr{}, false
		}
	}
	return parseHost(entry)
}

// parseHost reads an address with or without a port ("192.0.2.1",
// "192.0.2.1:80", "2001:db8::1", "[2001:db8::1]:80", "[2001:db8::1]"),
// dropping an IPv6 zone and unmapping IPv4-mapped IPv6.
func parseHost(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().WithZone("").Unmap(), true
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}

// addrName names the client at a: an IPv4 address itself, an IPv6
// address its /64.
func addrName(a netip.Addr) string {
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, ipv6ClientBits).Masked().String()
}

func inRanges(a netip.Addr, ranges []netip.Prefix) bool {
	for _, p := range ranges {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ParsePrefixes reads trusted proxy ranges: CIDRs ("10.0.0.0/8",
// "2001:db8::/32") or single addresses ("127.0.0.1", a /32 or /128).
// IPv4-mapped IPv6 ranges are turned into IPv4 ones, as peers are.
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if p, err := netip.ParsePrefix(s); err == nil {
			if a := p.Addr(); a.Is4In6() {
				if p.Bits() < 96 {
					return nil, fmt.Errorf("%w %q: an IPv4-mapped range shorter than /96", ErrTrustedProxy, s)
				}
				p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%w %q: want a CIDR such as 10.0.0.0/8 or an address", ErrTrustedProxy, s)
		}
		a = a.WithZone("").Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// validHeaderName reports whether s is an HTTP field name (RFC 9110's
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0 {
			continue
		}
		return false
	}
	return true
}
