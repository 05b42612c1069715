//go:build interop

package interop

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestReshardTabletdSourceIntoVttablet: Vitess v23 vttablets as Reshard targets (-80, 80-)
// of a tabletd source (customer/0). The targets send the filters Vitess builds for a Reshard
// (in_keyrange('-80') with the source table's primary vindex, read by tabletd from the cell's
// SrvVSchema) to tabletd's VStreamRows and VStream; the rows must split by Vitess's hash, none
// lost or duplicated, then SwitchTraffic and
// Complete (reshard, shared with the MoveTables flows).
func TestReshardTabletdSourceIntoVttablet(t *testing.T) {
	c := newCluster(t, "--enable-buffer", "--buffer-window", "20s", "--buffer-min-time-between-failovers", "1s")
	src := c.vrPrimary(200, "customer", "0", false)
	c.ctl("ApplySchema", "--sql", strings.Join(commerceSchema[1:], ";"), "customer")
	c.ctl("ApplyVSchema", "--vschema", `{"tables": {"customer": {}, "corder": {}}}`, "customer")
	g := c.gate(t, "customer")
	eventually(t, 30*time.Second, "vtgate sees the customer tables", func() bool {
		_, err := g.Exec("select count(*) from customer")
		return err == nil
	})
	for i := 0; i < 600; i += 200 {
		var cust, ord []string
		for j := i + 1; j <= i+200; j++ {
			cust = append(cust, fmt.Sprintf("(%d, 'user%d@example.com')", j, j))
			ord = append(ord, fmt.Sprintf("(%d, %d, 'SKU-%d', %d)", j, j, j%3, j%7))
		}
		mustExec(t, g, "insert into customer (customer_id, email) values "+strings.Join(cust, ","))
		mustExec(t, g, "insert into corder (order_id, customer_id, sku, price) values "+strings.Join(ord, ","))
	}
	reshard(t, c, src, true)
}
