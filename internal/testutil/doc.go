// Package testutil holds helpers shared by the runtime tests of the
// repository: [Eventually], the one way a test waits for a condition with a
// deadline. Only test files import it (internal/archtest checks that), so
// none of it is compiled into the library or the binaries.
package testutil
