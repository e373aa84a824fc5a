//! Pipeline: wires capture → decode → domain → sketch into workers, and detect → alert
//! into the coordinator.
