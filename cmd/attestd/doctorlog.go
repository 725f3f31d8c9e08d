package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/attestd/attestd/internal/logsetup"
	"github.com/attestd/attestd/packaging/plists"
)

// appIDHint is what Apple requires beyond a signature, said where a
// DeviceCheck failure is reported.
const appIDHint = "DeviceCheck also needs an App ID for this helper's bundle identifier, registered in the signing team " +
	"(developer.apple.com > Certificates, Identifiers & Profiles > Identifiers); see entitlements/README.md"

func joinHints(hints ...string) string {
	var out []string
	for _, h := range hints {
		if h != "" {
			out = append(out, h)
		}
	}
	return strings.Join(out, "; ")
}

// agentLogFile returns label and the path of the log its LaunchAgent
// writes (serve --log-file ~/Library/Logs/LABEL.log), "" when the label is
// unknown.
func agentLogFile(label string) (string, string) {
	if label == "" {
		return "", ""
	}
	p, err := logsetup.ExpandHome(plists.LogFile(label), logsetup.UserHome)
	if err != nil {
		return label, ""
	}
	return label, p
}

// logCheck says where the agent's log is, and whether it has one yet.
func logCheck(opts doctorOptions) check {
	c := check{Name: "log"}
	switch fi, err := os.Stat(opts.logFile); {
	case opts.logFile == "":
		c.Status, c.Detail = statusSkip, "the agent was named by its socket key, so its log's name (LABEL.log) is unknown"
		c.Hint = "name it by its label: attestd doctor --agent LABEL; logs are in ~/Library/Logs/LABEL.log"
	case err != nil:
		c.Status, c.Detail = statusSkip, fmt.Sprintf("no log yet at %s: the agent %s has not run since it was installed", opts.logFile, opts.agentLabel)
		c.Hint = "the agent starts when a client connects: attestd token --agent " + opts.agentLabel
	default:
		c.Status = statusPass
		c.Detail = fmt.Sprintf("the agent %s logs to %s (%d bytes, last written %s); fatal crashes to %s",
			opts.agentLabel, opts.logFile, fi.Size(), fi.ModTime().Format(time.RFC3339), logsetup.CrashPath(opts.logFile))
	}
	return c
}
