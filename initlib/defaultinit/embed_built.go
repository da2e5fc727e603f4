//go:build krunbench_init

package defaultinit

import _ "embed"

//go:embed krun-init
var image string
