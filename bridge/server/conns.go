package server

// Conns returns the number of connections open now, for a daemon that
// exits when idle.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}
