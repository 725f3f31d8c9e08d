//go:build race

package reliability

// raceEnabled scales the heaviest cases down: the race detector makes every
// request several times slower, and CI runs with it on 2 cores.
const raceEnabled = true
