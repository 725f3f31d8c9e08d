package diag

import "time"

// The commands whose lists of checks this package runs, as Report.Command
// names them.
const (
	doctorCommand   = "doctor"
	selftestCommand = "selftest"
)

// DoctorConfig says what Doctor checks.
type DoctorConfig struct {
	// Version is attestd's version, for the report's heading.
	Version string
	// Launchd is the name of the socket in the LaunchAgent plist's
	// Sockets dictionary that the launchd check asks for.
	Launchd string
	// Socket is the daemon's socket path; "" skips the socket check.
	Socket string
	// Timeout bounds the test token.
	Timeout time.Duration
	// NoToken skips asking DeviceCheck for a test token.
	NoToken bool
	// AgentLabel names the LaunchAgent whose log LogFile is. LogFile is ""
	// when the agent is known only by its socket key; CrashFile is where
	// that agent's fatal crashes go.
	AgentLabel, LogFile, CrashFile string
}

// DefaultSelftestTimeout bounds each Apple call of the selftest.
const DefaultSelftestTimeout = 20 * time.Second

// SelftestConfig says how Selftest runs.
type SelftestConfig struct {
	// Version is attestd's version, for the report and the servers the
	// selftest starts.
	Version string
	// Timeout bounds each call into Apple (isSupported, generateToken)
	// and the launchd round trip; zero means DefaultSelftestTimeout.
	Timeout time.Duration
	// Launchd opts in to the launchd-agent check, which bootstraps a
	// temporary LaunchAgent in gui/$UID for a moment.
	Launchd bool
	// TempDir is where the temporary sockets and plist go; "" is the
	// system's temporary directory.
	TempDir string
	// PollEvery is how often the launchd check asks launchctl for the
	// agent's socket while the agent starts; zero means 100 ms.
	PollEvery time.Duration
}
