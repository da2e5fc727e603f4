module github.com/krunbench/krunbench/bench

go 1.26.8

require (
	github.com/hanwen/go-fuse/v2 v2.12.1
	golang.org/x/sys v0.50.0
)

require github.com/krunbench/krunbench v0.0.0

replace github.com/krunbench/krunbench => ../
