package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/attestd/attestd/bridge/header"
)

func init() {
	c := &command{
		name: "decode",
		summary: "Decode a \"v1.\" header value, or the app-server's {\"v\":1,\"s\":N,\"t\":…} envelope, to JSON.\n" +
			"Reads VALUE, or standard input when VALUE is - or absent. Nothing is checked with Apple.",
		usage: "decode [VALUE|-]",
	}
	c.run = func(ctx context.Context, s *streams, args []string) error {
		fs := newFlagSet(s, c)
		if err := parseFlags(fs, args); err != nil {
			return err
		}
		if fs.NArg() > 1 {
			return usagef("give one value, or - to read standard input")
		}
		in, err := readValue(s, fs.Arg(0))
		if err != nil {
			return withHint(err, "give one header value: a \"v1.\" value or the app-server's envelope")
		}
		out, err := decodeForDisplay(strings.TrimSpace(in))
		if err != nil {
			return err
		}
		enc := json.NewEncoder(s.out)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	register(c)
}

// maxInput bounds what "attestd decode" and "attestd verify" take: the
// longest envelope, plus room for white space and a leading
// "x-oai-attestation:".
const maxInput = header.MaxEnvelopeLen + 1024

// errInputTooLong is the error for input past maxInput: refused whole,
// never cut to its first part.
var errInputTooLong = fmt.Errorf("input longer than %d bytes: not one attestation header value", maxInput)

// readValue returns arg, or standard input when arg is "" or "-". Input
// longer than maxInput is refused with errInputTooLong.
func readValue(s *streams, arg string) (string, error) {
	if arg != "" && arg != "-" {
		if len(arg) > maxInput {
			return "", errInputTooLong
		}
		return arg, nil
	}
	b, err := io.ReadAll(io.LimitReader(s.in, maxInput+1))
	if err != nil {
		return "", fmt.Errorf("read standard input: %w", err)
	}
	if len(b) > maxInput {
		return "", fmt.Errorf("standard input: %w", errInputTooLong)
	}
	return string(b), nil
}

// decoded is what "attestd decode" prints.
type decoded struct {
	Envelope    *envelopeOut `json:"envelope,omitempty"`
	Kind        string       `json:"kind,omitempty"`
	Token       string       `json:"token,omitempty"` // standard base64, as Apple's server API takes it
	TokenBytes  int          `json:"tokenBytes,omitempty"`
	Fingerprint string       `json:"fingerprint,omitempty"`
	GeneratedAt string       `json:"generatedAt,omitempty"`
	BundleID    string       `json:"bundleId"`
	TeamID      string       `json:"teamId"`
}

type envelopeOut struct {
	Version    int    `json:"version"`
	Status     int    `json:"status"`
	StatusName string `json:"statusName"`
}

func decodeForDisplay(in string) (*decoded, error) {
	if in == "" {
		return nil, usagef("nothing to decode: give a header value or an envelope")
	}
	out := &decoded{}
	value := in
	if header.IsEnvelope(in) {
		env, err := header.ParseEnvelope(in)
		if err != nil {
			return nil, err
		}
		out.Envelope = &envelopeOut{Version: env.Version, Status: int(env.Status), StatusName: env.Status.String()}
		if env.Status != header.StatusOK {
			return out, nil
		}
		value = env.Token
	}
	v, err := header.Decode(value)
	if err != nil {
		return nil, err
	}
	out.Kind = v.Kind
	out.Token = base64.StdEncoding.EncodeToString(v.Token)
	out.TokenBytes = len(v.Token)
	out.Fingerprint = header.Fingerprint(value)
	if !v.GeneratedAt.IsZero() {
		out.GeneratedAt = v.GeneratedAt.UTC().Format(time.RFC3339Nano)
	}
	out.BundleID, out.TeamID = v.BundleID, v.TeamID
	return out, nil
}
