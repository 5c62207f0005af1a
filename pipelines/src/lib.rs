//! tributary-pipelines
