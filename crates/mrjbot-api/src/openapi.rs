//! The OpenAPI 3 document, generated from the handlers and DTOs. Every operation also
//! documents the error responses the shared extractors and services can produce, all in
//! the one error shape.

use crate::error::ErrorBody;
use crate::routes::SortOrder;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Doc, RefOr, ResponseBuilder};

#[derive(OpenApi)]
#[openapi(
    info(title = "MRJBot API", description = "Control plane of MRJBot: users, roles, plans, nodes, subscriptions, audit log."),
    components(schemas(ErrorBody, SortOrder)),
    tags(
        (name = "auth", description = "Sign-in, tokens, sessions"),
        (name = "users", description = "Customers and staff"),
        (name = "roles", description = "Roles and permissions"),
        (name = "plans", description = "What the shop sells"),
        (name = "nodes", description = "VPN servers and their inbounds"),
        (name = "subscriptions", description = "What customers bought"),
        (name = "audit", description = "Who did what"),
        (name = "settings", description = "Shop settings"),
        (name = "support", description = "Support tickets and broadcasts"),
    )
)]
struct ApiDoc;

pub(crate) fn base() -> Doc {
    let mut doc = ApiDoc::openapi();
    if let Some(c) = doc.components.as_mut() {
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
    doc
}

fn error_response(description: &str) -> RefOr<utoipa::openapi::Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

pub(crate) fn finish(mut doc: Doc) -> Doc {
    for item in doc.paths.paths.values_mut() {
        let ops = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for op in ops.into_iter().flatten() {
            let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
            let has_body = op.request_body.is_some();
            let r = &mut op.responses.responses;
            let mut add = |code: &str, d: &str| {
                r.entry(code.to_owned())
                    .or_insert_with(|| error_response(d));
            };
            add("400", "Malformed request");
            add("404", "Not found");
            add("402", "The wallet balance does not cover the amount");
            add("409", "Conflict with the current state");
            add("413", "Request body too large");
            add("422", "Validation failed; details name the fields");
            add("423", "Account locked");
            add("429", "Too many requests");
            add("500", "Internal error; the message carries the request id");
            add("502", "A payment gateway refused or did not answer");
            add("503", "Temporarily unavailable");
            if secured {
                add("401", "Missing, invalid or expired token");
                add("403", "Not allowed");
            } else {
                add("401", "Wrong credentials or token");
                add("403", "Account disabled");
            }
            if has_body {
                add("415", "Unsupported media type");
            }
        }
    }
    doc
}

/// The document as served at `/api/v1/openapi.json`.
pub fn openapi() -> Doc {
    let (_, spec) = utoipa_axum::router::OpenApiRouter::<mrjbot_app::App>::with_openapi(base())
        .merge(crate::routes::auth::router())
        .merge(crate::routes::resources())
        .split_for_parts();
    finish(spec)
}
