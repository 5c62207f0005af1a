//! tributary-lakehouse
