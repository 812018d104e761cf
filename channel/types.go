package channel

import (
	"time"

	"github.com/workspace-sandbox/workspace/tracking"
)

// Request types and the bodies they carry. Guest → host: TypeCapture (a
// tracking.Capture, blobs 0 the JPEG and 1 its thumbnail) and TypeRecords
// (Records). Host → guest: TypePolicy (a tracking.Policy), TypeTrack (a
// tracking.State), TypeStatus (answered with a tracking.AgentStatus) and
// TypeShoot (Shoot, answered with a Shot) and TypeFlush (no body: deliver
// the spool now, answered with a tracking.AgentStatus once it is empty or
// FlushWait passed; sent before the VM is suspended). The host answers an ingestion
// with a tracking.Ack.
const (
	TypeCapture = "capture"
	TypeRecords = "records"
	TypePolicy  = "policy"
	TypeTrack   = "track"
	TypeStatus  = "status"
	TypeShoot   = "shoot"
	TypeFlush   = "flush"
	TypeAck     = "ack"
)

// FlushWait bounds how long an agent works on a TypeFlush before it
// answers with what is left in its spool.
const FlushWait = 15 * time.Second

// Capabilities an agent may announce in its Hello.
const (
	CapScreenshots = "screenshots"
	CapActivity    = "activity"
)

// Shoot asks the agent for screenshots now, as a retake of RetakeOf (of
// its display); the answer is a Shot with the new captures' ids, sent once
// they are spooled.
type Shoot struct {
	RetakeOf string `json:"retake_of"`
	Display  int    `json:"display"`
}

// Shot answers a Shoot.
type Shot struct {
	IDs []string `json:"ids"`
}

// Records is a batch of records.
type Records struct {
	Records []tracking.Record `json:"records"`
}
