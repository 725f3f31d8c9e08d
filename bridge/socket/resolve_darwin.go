package socket

// On macOS a client also looks in the user's launchd environment, where a
// LaunchAgent's SecureSocketWithKey variable appears the moment the agent
// is loaded, before any process started earlier could inherit it.
func init() { launchdGetenv = launchctlGetenv }
