package darwin

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func unixPair(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "s")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestPeerCheck(t *testing.T) {
	token := auditToken{0, 0, 0, 0, 0, 4242, 0, 0}
	reqFailed := &OSStatusError{Op: "SecCodeCheckValidity", Status: errSecCSReqFailed}
	readErr := errors.New("getsockopt failed")
	tests := []struct {
		name     string
		tokenErr error
		validErr error
		wantErr  bool
		wantIs   error
		wantText string
	}{
		{name: "satisfies the requirement"},
		{name: "fails the requirement", validErr: reqFailed, wantErr: true, wantIs: ErrPeerRejected,
			wantText: "pid 4242: SecCodeCheckValidity: OSStatus -67050: code failed to satisfy"},
		{name: "unreadable token", tokenErr: readErr, wantErr: true, wantIs: readErr,
			wantText: "read the peer's audit token"},
	}
	conn := unixPair(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			validated := false
			p := peerCheck{
				token: func(*net.UnixConn) (auditToken, error) { return token, tt.tokenErr },
				validate: func(got auditToken) error {
					validated = true
					if got != token {
						t.Errorf("validate got %v, want %v", got, token)
					}
					return tt.validErr
				},
			}
			err := p.check(conn)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("check = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrPeerRejected) || !errors.Is(err, tt.wantIs) {
				t.Errorf("check = %v, want ErrPeerRejected and %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("check = %q, want %q", err, tt.wantText)
			}
			if tt.tokenErr != nil && validated {
				t.Error("validated a peer whose token could not be read")
			}
		})
	}
	p := peerCheck{token: nil, validate: nil}
	if err := p.check(nil); !errors.Is(err, ErrPeerRejected) {
		t.Errorf("check(nil) = %v", err)
	}
}

func TestOSStatusError(t *testing.T) {
	tests := []struct {
		err  OSStatusError
		want string
	}{
		{OSStatusError{Op: "SecCodeCheckValidity", Status: -67050, Msg: "from Apple"}, "SecCodeCheckValidity: OSStatus -67050: from Apple"},
		{OSStatusError{Op: "SecCodeCheckValidity", Status: -67062}, "SecCodeCheckValidity: OSStatus -67062: code object is not signed at all"},
		{OSStatusError{Op: "SessionGetInfo", Status: -60500}, "SessionGetInfo: OSStatus -60500"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestNewPeerRequirementText(t *testing.T) {
	for _, text := range []string{"", "  \n"} {
		if _, err := NewPeerRequirement(text); err == nil || errors.Is(err, ErrUnsupported) {
			t.Errorf("NewPeerRequirement(%q) = %v, want an empty-requirement error", text, err)
		}
	}
}

func TestAuditTokenPID(t *testing.T) {
	if got := (auditToken{5: 77}).pid(); got != 77 {
		t.Errorf("pid = %d, want 77", got)
	}
}

func TestGetsockoptResult(t *testing.T) {
	const want = 32
	tests := []struct {
		ret, errno int32
		size       uint32
		wantErr    error
		wantText   string
	}{
		{ret: 0, size: want},
		{ret: -1, errno: int32(syscall.EINVAL), size: want, wantErr: syscall.EINVAL, wantText: "invalid argument"},
		{ret: -1, errno: int32(syscall.ENOTCONN), size: want, wantErr: syscall.ENOTCONN},
		{ret: -1, errno: 0, size: want, wantText: "left errno 0"},
		{ret: 0, size: 16, wantText: "16 bytes, want 32"},
	}
	for _, tt := range tests {
		err := getsockoptResult(tt.ret, tt.errno, tt.size, want)
		if tt.wantErr == nil && tt.wantText == "" {
			if err != nil {
				t.Errorf("getsockoptResult(%d, %d, %d) = %v, want nil", tt.ret, tt.errno, tt.size, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("getsockoptResult(%d, %d, %d) = nil, want an error", tt.ret, tt.errno, tt.size)
			continue
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("getsockoptResult = %v, want errors.Is %v", err, tt.wantErr)
		}
		if !strings.Contains(err.Error(), tt.wantText) {
			t.Errorf("getsockoptResult = %q, want %q", err, tt.wantText)
		}
	}
}
