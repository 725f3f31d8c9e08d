package client

import (
	"context"
	"errors"
	"testing"

	"github.com/attestd/attestd/bridge/socket"
)

func TestResolve(t *testing.T) {
	env := map[string]string{
		"ATTESTD_SOCKET_com_example_Host_attestd": "/host.sock",
		"ATTESTD_SOCKET": "/override.sock",
	}
	getenv := func(k string) string { return env[k] }
	for _, tc := range []struct {
		lookup socket.Lookup
		path   string
		source socket.Source
	}{
		{socket.Lookup{Path: "/flag.sock"}, "/flag.sock", socket.SourceFlag},
		{socket.Lookup{Agent: "com.example.Host.attestd"}, "/host.sock", socket.SourceEnv},
		{socket.Lookup{}, "/override.sock", socket.SourceOverride},
	} {
		tc.lookup.Getenv = getenv
		c, f, err := Resolve(context.Background(), tc.lookup)
		if err != nil {
			t.Fatal(err)
		}
		if c.Path() != tc.path || f.Path != tc.path || f.Source != tc.source {
			t.Errorf("%+v: client at %s, found %+v; want %s from %s", tc.lookup, c.Path(), f, tc.path, tc.source)
		}
		c.Close()
	}
	if c, _, err := Resolve(context.Background(), socket.Lookup{Agent: "not..a.label", Getenv: getenv}); !errors.Is(err, socket.ErrBadAgent) || c != nil {
		t.Errorf("bad agent: %v, %v", c, err)
	}
}
