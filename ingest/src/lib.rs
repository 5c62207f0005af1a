//! tributary-ingest
