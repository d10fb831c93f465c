//! The OpenAPI document, generated from the handlers' `#[utoipa::path]`
//! annotations by `utoipa-axum` (a route is registered and documented by
//! the same `routes!` call, so the two cannot drift), served at
//! `GET /api/v1/openapi.json`, and a self-contained docs page at
//! `GET /api/docs` that renders it with a small inline script (no CDN:
//! deployments may be offline).

use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::Context;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "MeshHook API",
        version = "1",
        description = "Webhook-first durable workflow engine on PostgreSQL. Errors are \
            `{code, detail, errors?}`; see docs/api.md for roles, pagination and limits."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "auth", description = "Sign-up, sign-in, tokens"),
        (name = "projects", description = "Projects, members, API keys"),
        (name = "workflows", description = "Drafts, validation, versions, test runs"),
        (name = "runs", description = "Runs, events, resume, cancel, replay, dead letters"),
        (name = "secrets", description = "The secrets vault (values are write-only)"),
        (name = "operations", description = "Health, audit log, this document"),
    )
)]
struct Base;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT access token or project API key (mh_...)")
                    .build(),
            ),
        );
    }
}

/// The document's skeleton: info, tags, the bearer security scheme.
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

/// The full document.
pub fn openapi() -> utoipa::openapi::OpenApi {
    crate::api_router().split_for_parts().1
}

static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    openapi().to_pretty_json().unwrap_or_else(|e| {
        format!("{{\"error\": \"the OpenAPI document did not serialise: {e}\"}}")
    })
});

pub fn router() -> OpenApiRouter<Context> {
    OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .routes(routes!(docs_page))
}

/// This document (OpenAPI 3.1).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
async fn openapi_json() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        DOCUMENT.as_str(),
    )
}

/// A human-readable rendering of the OpenAPI document.
#[utoipa::path(get, path = "/api/docs", tag = "operations", security(()),
    responses((status = 200, description = "HTML page", content_type = "text/html")))]
async fn docs_page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'",
            ),
        ],
        DOCS_HTML,
    )
}

const DOCS_HTML: &str = r##"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>MeshHook API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1d2330;background:#f7f8fa}
 header{background:#1d2330;color:#fff;padding:14px 24px}
 main{max-width:1100px;margin:0 auto;padding:16px 24px}
 h2{margin-top:28px;border-bottom:1px solid #d5d9e0;padding-bottom:4px}
 details{background:#fff;border:1px solid #d5d9e0;border-radius:6px;margin:6px 0}
 summary{cursor:pointer;padding:8px 12px;display:flex;gap:12px;align-items:baseline}
 .m{font:600 12px monospace;text-transform:uppercase;width:56px;text-align:center;border-radius:4px;padding:2px 0;color:#fff}
 .get{background:#2f7d32}.post{background:#1565c0}.put{background:#8e5b00}.patch{background:#6a1b9a}.delete{background:#b71c1c}
 code,pre{font:13px ui-monospace,monospace}
 pre{background:#f0f2f5;padding:8px;border-radius:4px;overflow:auto;max-height:360px}
 .body{padding:4px 16px 12px}
 table{border-collapse:collapse}td,th{border:1px solid #e0e3e8;padding:3px 8px;text-align:left;vertical-align:top}
 .lock{color:#8a6d00;font-size:12px}
 @media (prefers-color-scheme:dark){body{background:#14171c;color:#e3e6eb}details{background:#1c2027;border-color:#333a45}pre{background:#252a33}td,th{border-color:#333a45}}
</style></head>
<body><header><strong>MeshHook API</strong> &middot; <a style="color:#9cc3ff" href="/api/v1/openapi.json">openapi.json</a></header>
<main id="root"><p>Loading the OpenAPI document&hellip;</p></main>
<script>
"use strict";
const el=(t,a={},...kids)=>{const e=document.createElement(t);for(const[k,v]of Object.entries(a))e.setAttribute(k,v);for(const c of kids)e.append(c);return e};
const pretty=v=>JSON.stringify(v,null,2);
function resolve(doc,s){if(s&&s.$ref){const n=s.$ref.split("/").pop();return{name:n,schema:(doc.components.schemas||{})[n]}}return{name:null,schema:s}}
function schemaBlock(doc,s){if(!s)return el("span",{},"—");const r=resolve(doc,s);const d=el("div");if(r.name)d.append(el("code",{},r.name));d.append(el("pre",{},pretty(r.schema)));return d}
function op(doc,path,method,o){
  const det=el("details");
  const sec=(o.security||doc.security||[]).some(x=>Object.keys(x).length>0);
  det.append(el("summary",{},el("span",{class:"m "+method},method),el("code",{},path),el("span",{},o.summary||""),sec?el("span",{class:"lock"},"🔒 bearer"):""));
  const b=el("div",{class:"body"});
  if(o.description)b.append(el("p",{},o.description));
  if(o.parameters&&o.parameters.length){const t=el("table",{},el("tr",{},el("th",{},"parameter"),el("th",{},"in"),el("th",{},"required"),el("th",{},"description")));
    for(const p of o.parameters)t.append(el("tr",{},el("td",{},el("code",{},p.name)),el("td",{},p.in),el("td",{},p.required?"yes":"no"),el("td",{},p.description||"")));b.append(el("h4",{},"Parameters"),t)}
  if(o.requestBody){const c=o.requestBody.content||{};for(const[ct,m]of Object.entries(c)){b.append(el("h4",{},"Request body ("+ct+")"),schemaBlock(doc,m.schema))}}
  b.append(el("h4",{},"Responses"));
  for(const[code,r]of Object.entries(o.responses||{})){const c=(r.content&&Object.values(r.content)[0])||null;b.append(el("div",{},el("strong",{},code+" "),r.description||""),c&&c.schema?schemaBlock(doc,c.schema):"")}
  det.append(b);return det}
fetch("/api/v1/openapi.json").then(r=>r.json()).then(doc=>{
  const root=document.getElementById("root");root.textContent="";
  root.append(el("h1",{},doc.info.title+" v"+doc.info.version),el("p",{},doc.info.description||""));
  const groups={};
  for(const[path,item]of Object.entries(doc.paths||{}))for(const[method,o]of Object.entries(item)){if(typeof o!=="object"||!o.responses)continue;const tag=(o.tags&&o.tags[0])||"other";(groups[tag]=groups[tag]||[]).push([path,method,o])}
  const tags=(doc.tags||[]).map(t=>t.name);for(const t of Object.keys(groups))if(!tags.includes(t))tags.push(t);
  for(const t of tags){if(!groups[t])continue;const desc=((doc.tags||[]).find(x=>x.name===t)||{}).description||"";root.append(el("h2",{},t+" "),el("p",{},desc));for(const[p,m,o]of groups[t])root.append(op(doc,p,m,o))}
}).catch(e=>{document.getElementById("root").textContent="Could not load the OpenAPI document: "+e});
</script></body></html>
"##;
