// Package variants holds benchmarks only (variants_test.go): krunbench's
// server mounted in-process through /dev/fuse the way `krunbench serve`
// builds it, with one setting changed at a time, to explain fusebench rows
// where krunbench trails go-fuse or the tap costs more than it should.
package variants
