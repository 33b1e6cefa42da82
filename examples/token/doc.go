// Command token is the original framework's README example, ported step for
// step: every machine shares one token, any machine can update it, and a
// newcomer asks a neighbour for the current value.
//
// Run one process per terminal:
//
//	go run ./examples/token -listen 127.0.0.1:6966
//	go run ./examples/token -listen 127.0.0.1:6967 -join 127.0.0.1:6966
//
// Type a new token on a process's standard input to send it to everybody;
// every process prints "token <value>" whenever its token changes.
package main
