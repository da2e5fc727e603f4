//go:build !krunbench_init

package defaultinit

// image is empty: this binary was built without the default init.
var image string
