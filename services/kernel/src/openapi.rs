//! The OpenAPI 3.1 document of the REST API, generated from the routes as declared: every
//! route of every module with its method, path parameters, the permission it needs (and the
//! built-in roles holding it), the bearer security scheme, and the RFC 9457 problem responses
//! the guards and handlers answer with.
//!
//! ```text
//!  Routes (method, path, access) ─► document() ─► GET /api/v1/openapi.json
//!  Catalog (permission → roles)  ─┘
//! ```

use crate::auth::{Access, Catalog, RouteInfo};
use axum::http::Method;
use serde_json::{Map, Value, json};

/// The problem responses every guarded operation may answer, by status.
const GUARDED_PROBLEMS: [(&str, &str); 4] = [
    (
        "401",
        "No bearer token, or one that is tampered with, expired or revoked",
    ),
    ("403", "The caller lacks the permission (in the company)"),
    ("429", "The caller made too many requests; see Retry-After"),
    (
        "503",
        "The service is unavailable or the request ran out of time",
    ),
];

/// What every operation may answer besides its success.
const PROBLEMS: [(&str, &str); 4] = [
    ("400", "The request is not well-formed (JSON, parameters)"),
    ("404", "The resource does not exist"),
    (
        "409",
        "The request conflicts with the current state (a taken idempotency key, a version)",
    ),
    (
        "422",
        "The input breaks a rule: the problem names each field and rule",
    ),
];

fn problem_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    })
}

fn success(method: &Method) -> (&'static str, Value) {
    let body = json!({
        "content": {"application/json": {"schema": {}}}
    });
    let (status, description) = if method == Method::POST {
        (
            "2XX",
            "Done: 200 with the result, 201 with what was created (Location), or 202 accepted",
        )
    } else if method == Method::DELETE {
        ("2XX", "Deleted (204) or done (200)")
    } else {
        ("200", "The result")
    };
    let mut response = body;
    response["description"] = json!(description);
    (status, response)
}

/// `{name}` segments of a path.
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": {"type": "string", "minLength": 1}
            })
        })
        .collect()
}

fn operation_id(method: &Method, path: &str) -> String {
    let words: Vec<String> = path
        .trim_start_matches("/api/v1")
        .split(['/', '-', '{', '}'])
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    format!("{}_{}", method.as_str().to_lowercase(), words.join("_"))
}

fn tag(path: &str) -> String {
    path.trim_start_matches("/api/v1/")
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("api")
        .to_owned()
}

/// The document of `routes`; `catalog` names the roles holding each permission.
pub fn document(routes: &[RouteInfo], catalog: &Catalog, version: &str) -> Value {
    // Body schemas as JSON Schema 2020-12 (OpenAPI 3.1's dialect), each named type once under
    // components/schemas.
    let mut generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|settings| {
            settings.definitions_path = "/components/schemas".into();
            settings.meta_schema = None;
        })
        .into_generator();
    let mut paths: Map<String, Value> = Map::new();
    let mut sorted: Vec<&RouteInfo> = routes.iter().collect();
    sorted.sort_by(|a, b| (a.path, a.method.as_str()).cmp(&(b.path, b.method.as_str())));
    for route in sorted {
        let mut responses = Map::new();
        let (status, ok) = success(&route.method);
        responses.insert(status.to_owned(), ok);
        for (status, description) in PROBLEMS {
            responses.insert(status.to_owned(), problem_response(description));
        }
        let (security, description, permission) = match route.access {
            Access::Public => (
                json!([]),
                "Public: no token needed.".to_owned(),
                Value::Null,
            ),
            Access::Authenticated => (
                json!([{"bearerAuth": []}]),
                "Any logged-in user.".to_owned(),
                Value::Null,
            ),
            Access::Permission(permission) => (
                json!([{"bearerAuth": []}]),
                format!(
                    "Needs the permission `{}` ({}); held by the roles: {}. Where the request names a company, the permission must be held in it.",
                    permission.name,
                    permission.description,
                    catalog.roles_holding(permission).join(", ")
                ),
                json!(permission.name),
            ),
        };
        if !matches!(route.access, Access::Public) {
            for (status, text) in GUARDED_PROBLEMS {
                responses.insert(status.to_owned(), problem_response(text));
            }
            responses["401"]["headers"] = json!({
                "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}
            });
        }
        let mut operation = json!({
            "operationId": operation_id(&route.method, route.path),
            "tags": [tag(route.path)],
            "summary": format!("{} {}", route.method, route.path),
            "description": description,
            "security": security,
            "parameters": path_parameters(route.path),
            "responses": responses,
        });
        if !permission.is_null() {
            operation["x-permission"] = permission;
        }
        if let Some(request) = route.request {
            let schema = serde_json::to_value(request(&mut generator)).unwrap_or(Value::Null);
            operation["requestBody"] = json!({
                "required": true,
                "content": {"application/json": {"schema": schema}}
            });
        }
        if matches!(route.method, Method::POST | Method::PUT | Method::PATCH) {
            operation["parameters"]
                .as_array_mut()
                .expect("parameters are a list")
                .push(json!({
                    "name": "Idempotency-Key",
                    "in": "header",
                    "required": false,
                    "description": "Replays the first answer to the same key and body; another body under the key is 409",
                    "schema": {"type": "string", "maxLength": 200}
                }));
        }
        let item = paths
            .entry(route.path.to_owned())
            .or_insert_with(|| json!({}));
        item[route.method.as_str().to_lowercase()] = operation;
    }
    let mut schemas = generator.take_definitions(true);
    schemas.insert("Problem".into(), problem_schema());
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Tributary",
            "version": version,
            "description": "An ERP built as a data platform: commands over REST append events; reads come from the lake. Log in with POST /api/v1/auth/login and send the access token as `Authorization: Bearer <token>`."
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": schemas
        }
    })
}

/// RFC 9457 problem details, as every error of the API is answered.
fn problem_schema() -> Value {
    json!({
        "type": "object",
        "description": "RFC 9457 problem details",
        "required": ["type", "title", "status"],
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string"},
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "rule": {"type": "string"},
                        "detail": {"type": "string"}
                    }
                }
            }
        }
    })
}
