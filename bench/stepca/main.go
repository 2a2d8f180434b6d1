// Command step-ca runs smallstep's certificate authority for the bench's
// durable-peer stage. Debian's golang-github-smallstep-certificates-dev
// ships the step-ca 0.19 source but no cmd/step-ca, so this is the small
// main that runs its commands.AppCommand (bench/stepca-setup.sh builds it).
package main

import (
	"fmt"
	"os"

	"github.com/smallstep/certificates/commands"
	"github.com/urfave/cli"
)

func main() {
	app := cli.NewApp()
	app.Name = "step-ca"
	app.HelpName = "step-ca"
	app.Usage = "an online certificate authority (step-ca 0.19, Debian source)"
	app.UsageText = commands.AppCommand.UsageText
	app.Flags = commands.AppCommand.Flags
	app.Action = commands.AppCommand.Action
	if err := app.Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
