package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/tabletd/tabletd/tablet"
)

// vstreamOptions are the source-side VReplication flags (vttablet's names).
type vstreamOptions struct {
	packetSize int
}

func (o *vstreamOptions) bind(fs *pflag.FlagSet) {
	fs.IntVar(&o.packetSize, "vstream-packet-size", 250000, "row bytes per VStream / VStreamRows message (vttablet's suggested packet size)")
}

func (o *vstreamOptions) apply(c *tablet.Config) error {
	if o.packetSize <= 0 {
		return fmt.Errorf("--vstream-packet-size must be > 0 (got %d)", o.packetSize)
	}
	c.VStream.PacketSize = o.packetSize
	return nil
}
