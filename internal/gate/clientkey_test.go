package gate

import (
	"net/http"
	"net/netip"
	"strings"
	"testing"
)

func mustPrefixes(t testing.TB, list ...string) []netip.Prefix {
	t.Helper()
	p, err := ParsePrefixes(list)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Where a request's client name comes from: the peer, unless the peer is
// a trusted proxy and the client key is a header; then the right-most
// untrusted address in it. A header from anyone else is ignored.
func TestClientKey(t *testing.T) {
	t.Parallel()
	trusted := []string{"10.0.0.0/8", "127.0.0.1", "2001:db8:ffff::/48"}
	for _, c := range []struct {
		name, spec, remote string
		header             []string // values of the spec's header
		want               string
	}{
		{"remote addr", "remote-addr", "203.0.113.7:4242", nil, "203.0.113.7"},
		{"remote addr ignores the header", "remote-addr", "10.0.0.1:4242", []string{"198.51.100.1"}, "10.0.0.1"},
		{"default spec", "", "203.0.113.7:4242", nil, "203.0.113.7"},
		{"ipv6 peer by its /64", "remote-addr", "[2001:db8:1:2:3:4:5:6]:443", nil, "2001:db8:1:2::/64"},
		{"ipv4-mapped peer", "remote-addr", "[::ffff:203.0.113.7]:443", nil, "203.0.113.7"},
		{"unix socket peer", "remote-addr", "@", nil, ""},
		{"trusted peer, header", "header:X-Forwarded-For", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"untrusted peer: spoofed header ignored", "header:X-Forwarded-For", "203.0.113.7:80", []string{"198.51.100.1"}, "203.0.113.7"},
		{"right-most untrusted", "header:X-Forwarded-For", "10.1.2.3:80", []string{"198.51.100.66, 198.51.100.1, 10.9.9.9"}, "198.51.100.1"},
		{"spoofed left entries ignored", "header:X-Forwarded-For", "10.1.2.3:80", []string{"1.1.1.1, 2.2.2.2", "198.51.100.1"}, "198.51.100.1"},
		{"several header lines, last one's right-most", "header:X-Forwarded-For", "127.0.0.1:80", []string{"198.51.100.66", "198.51.100.1, 10.0.0.5"}, "198.51.100.1"},
		{"all trusted: left-most", "header:X-Forwarded-For", "10.1.2.3:80", []string{"10.0.0.9, 10.0.0.8"}, "10.0.0.9"},
		{"garbage entry: the peer", "header:X-Forwarded-For", "10.1.2.3:80", []string{"198.51.100.1, not-an-ip"}, "10.1.2.3"},
		{"garbage left of the client is not read", "header:X-Forwarded-For", "10.1.2.3:80", []string{"garbage, 198.51.100.1"}, "198.51.100.1"},
		{"empty elements", "header:X-Forwarded-For", "10.1.2.3:80", []string{", 198.51.100.1 ,,"}, "198.51.100.1"},
		{"empty header: the peer", "header:X-Forwarded-For", "10.1.2.3:80", []string{""}, "10.1.2.3"},
		{"no header: the peer", "header:X-Forwarded-For", "10.1.2.3:80", nil, "10.1.2.3"},
		{"address with port", "header:X-Forwarded-For", "10.1.2.3:80", []string{"198.51.100.1:5555"}, "198.51.100.1"},
		{"ipv6 in brackets with port", "header:X-Forwarded-For", "10.1.2.3:80", []string{"[2001:db8:aa:bb::1]:5555"}, "2001:db8:aa:bb::/64"},
		{"trusted ipv6 proxy", "header:X-Forwarded-For", "[2001:db8:ffff:1::2]:80", []string{"198.51.100.1, 2001:db8:ffff:2::3"}, "198.51.100.1"},
		{"x-real-ip", "header:X-Real-IP", "10.1.2.3:80", []string{"198.51.100.1"}, "198.51.100.1"},
		{"forwarded", "header:Forwarded", "10.1.2.3:80", []string{`for=198.51.100.66;proto=https, for="[2001:db8:cafe::17]:4711";by=10.0.0.1`}, "2001:db8:cafe::/64"},
		{"forwarded, trusted hop skipped", "header:Forwarded", "10.1.2.3:80", []string{`for=198.51.100.1, for=10.0.0.2`}, "198.51.100.1"},
		{"forwarded unknown", "header:Forwarded", "10.1.2.3:80", []string{`for=unknown`}, "10.1.2.3"},
		{"forwarded without for", "header:Forwarded", "10.1.2.3:80", []string{`proto=https`}, "10.1.2.3"},
	} {
		t.Run(c.name, func(t *testing.T) {
			key, err := ClientKeyFunc(c.spec, mustPrefixes(t, trusted...))
			if err != nil {
				t.Fatal(err)
			}
			r, _ := http.NewRequest("GET", "http://gate/auth", nil)
			r.RemoteAddr = c.remote
			name := strings.TrimPrefix(c.spec, "header:")
			for _, v := range c.header {
				r.Header.Add(name, v)
			}
			if c.spec == "remote-addr" {
				for _, v := range c.header {
					r.Header.Add("X-Forwarded-For", v)
				}
			}
			if got := key(r); got != c.want {
				t.Errorf("client %q, want %q", got, c.want)
			}
		})
	}
}

// A long header costs a bounded walk: past maxHops trusted entries the
// client is the last seen.
func TestClientKeyBoundedWalk(t *testing.T) {
	t.Parallel()
	key, err := ClientKeyFunc("header:X-Forwarded-For", mustPrefixes(t, "10.0.0.0/8"))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := http.NewRequest("GET", "http://gate/auth", nil)
	r.RemoteAddr = "10.0.0.1:1"
	r.Header.Set("X-Forwarded-For", "198.51.100.1, "+strings.Repeat("10.0.0.2, ", 100)+"10.0.0.3")
	if got := key(r); got != "10.0.0.2" {
		t.Errorf("client %q, want the last trusted hop looked at", got)
	}
}

func TestClientKeySettings(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		spec    string
		trusted []string
		ok      bool
	}{
		{"remote-addr", nil, true},
		{"header:X-Forwarded-For", []string{"10.0.0.0/8"}, true},
		{"header:X-Forwarded-For", nil, false},
		{"header:", []string{"10.0.0.0/8"}, false},
		{"header:Bad Name", []string{"10.0.0.0/8"}, false},
		{"cookie:session", nil, false},
	} {
		_, err := ClientKeyFunc(c.spec, mustPrefixes(t, c.trusted...))
		if (err == nil) != c.ok {
			t.Errorf("ClientKeyFunc(%q, %v) = %v, want ok %v", c.spec, c.trusted, err, c.ok)
		}
	}
	for _, c := range []struct {
		in   string
		want string
	}{
		{"10.0.0.0/8", "10.0.0.0/8"},
		{"10.1.2.3/8", "10.0.0.0/8"},
		{"127.0.0.1", "127.0.0.1/32"},
		{"::1", "::1/128"},
		{"::ffff:10.0.0.0/104", "10.0.0.0/8"},
		{" 2001:db8::/32 ", "2001:db8::/32"},
	} {
		got, err := ParsePrefixes([]string{c.in})
		if err != nil || len(got) != 1 || got[0].String() != c.want {
			t.Errorf("ParsePrefixes(%q) = %v, %v; want %s", c.in, got, err, c.want)
		}
	}
	for _, bad := range []string{"", "10.0.0.0/33", "host.example", "::ffff:0:0/64"} {
		if _, err := ParsePrefixes([]string{bad}); err == nil {
			t.Errorf("ParsePrefixes(%q) accepted", bad)
		}
	}
}

// FuzzClientName: any peer and header give a name that is empty, an IPv4
// address or an IPv6 /64, and a peer outside the trusted ranges is named
// by itself, whatever its header says.
func FuzzClientName(f *testing.F) {
	for _, s := range [][2]string{
		{"10.0.0.1:80", "198.51.100.1, 10.0.0.2"},
		{"203.0.113.7:1", "198.51.100.1"},
		{"[2001:db8::1]:1", `for="[2001:db8::2]:1";proto=http`},
		{"10.0.0.1:80", ",,, ,"},
		{"@", "1.2.3.4"},
		{"10.0.0.1:80", "[::ffff:1.2.3.4]:99, fe80::1%eth0"},
	} {
		f.Add(s[0], s[1], false)
		f.Add(s[0], s[1], true)
	}
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/64")}
	f.Fuzz(func(t *testing.T, remote, value string, forwarded bool) {
		name := clientName(remote, []string{value}, forwarded, trusted)
		switch {
		case name == "":
		case strings.Contains(name, "/"):
			p, err := netip.ParsePrefix(name)
			if err != nil || p.Bits() != ipv6ClientBits || !p.Addr().Is6() || p.Masked() != p {
				t.Fatalf("name %q is not an IPv6 /64", name)
			}
		default:
			if a, err := netip.ParseAddr(name); err != nil || !a.Is4() {
				t.Fatalf("name %q is not an IPv4 address", name)
			}
		}
		peer, ok := parseHost(remote)
		if ok && !inRanges(peer, trusted) && name != addrName(peer) {
			t.Fatalf("peer %s is not trusted, yet named %q from its header %q", peer, name, value)
		}
		if !ok && name != "" {
			t.Fatalf("a peer without an address (%q) named %q", remote, name)
		}
	})
}
