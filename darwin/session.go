package darwin

// Security/AuthSession.h.
const (
	// callerSecuritySession is ((SecuritySessionId)-1): the session of the
	// calling process.
	callerSecuritySession = ^uint32(0)
	// sessionHasGraphicAccess is the SessionAttributeBits bit for a
	// session with access to the window server.
	sessionHasGraphicAccess = 0x0010
)

// hasGraphicAccess reports whether SessionGetInfo's attribute bits grant
// graphic access.
func hasGraphicAccess(attributes uint32) bool {
	return attributes&sessionHasGraphicAccess != 0
}
