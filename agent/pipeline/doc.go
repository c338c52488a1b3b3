// Package pipeline turns credentials into passages, one at a time, in the order read. For
// each credential, Handle runs the same steps, in this order:
//
//  1. prepare: each Step may complete the credential (the face snapshot a card read needs)
//     or decide it without the platform;
//  2. decide: the Decider (the platform and the venue's policy, or the offline policy);
//  3. plan: the Barrier says what the barrier will do for the verdict in its gate mode;
//  4. record: the passage record, its subject masked and, with a platform key, sealed;
//  5. store: the record is committed to the outbox, durably, before anything moves;
//  6. open: only then does the barrier open for a pass;
//  7. audit: the decision's platform calls (and, for a re-check, its credential) go to the
//     Auditor, which never blocks;
//  8. observe: the console, the screen, the status and the metrics are told.
//
// A record the outbox refuses is counted and logged, and the gate still follows the
// decision, so that the lane keeps moving.
package pipeline
