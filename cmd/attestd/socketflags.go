package main

import (
	"context"
	"flag"
	"os"

	"github.com/attestd/attestd/bridge/socket"
	"github.com/attestd/attestd/internal/agent"
)

// clientFlags are the flags every client of the daemon shares (token,
// status, bridge, doctor): which socket, or which host's helper.
type clientFlags struct {
	socket string
	agent  string
}

func addClientFlags(fs *flag.FlagSet) *clientFlags {
	c := &clientFlags{}
	fs.StringVar(&c.socket, "socket", "", "the daemon's socket `PATH` (default: the helper's own variable, then launchd, then the per-user path)")
	fs.StringVar(&c.agent, "agent", "", "the helper to ask, by its LaunchAgent `LABEL` or its socket key (default: the one this Attestd.app ships with, else "+socket.DefaultLabel+")")
	return c
}

// ownExecutable returns the path of the running executable: s.executable's
// answer, or os.Executable's when it is nil.
func (s *streams) ownExecutable() (string, error) {
	if s.executable == nil {
		return os.Executable()
	}
	return s.executable()
}

// ownAgent returns the LaunchAgent label and socket key that the
// Info.plist of the bundle this executable runs from names (agent.Own).
func ownAgent(s *streams) (label, key string) {
	exe, err := s.ownExecutable()
	if err != nil {
		return "", ""
	}
	return agent.Own(exe)
}

// lookup says which helper the flags name: --socket, else --agent, else
// the agent this bundle ships with, else none (socket.Resolve then
// honours $ATTESTD_SOCKET and looks for the development agent).
func (c *clientFlags) lookup(s *streams) socket.Lookup {
	l := socket.Lookup{Path: c.socket, Agent: c.agent, Getenv: s.getenv}
	if l.Path == "" && l.Agent == "" {
		if _, key := ownAgent(s); key != "" {
			l.Agent = key
		}
	}
	return l
}

// resolve finds the socket, as "Where the socket is" in the README says.
func (c *clientFlags) resolve(ctx context.Context, s *streams) (socket.Found, error) {
	f, err := socket.Resolve(ctx, c.lookup(s))
	if err != nil {
		return f, withHint(err, "name the helper by its LaunchAgent label (--agent com.example.Host.attestd) or its socket key (--agent ATTESTD_SOCKET_…), or give --socket PATH")
	}
	return f, nil
}

// agentLabel returns the LaunchAgent label the flags point at, for the
// log file's name: --agent when it is a label, else this bundle's, else
// the development agent's when no agent is named; "" when only a key is
// known.
func (c *clientFlags) agentLabel(s *streams) string {
	switch {
	case c.agent != "" && socket.IsLabel(c.agent):
		return c.agent
	case c.agent != "":
		return ""
	}
	if label, key := ownAgent(s); label != "" || key != "" {
		return label
	}
	return socket.DefaultLabel
}
