//! `/workflows/:id`: for now the workflow's name, status and JSON
//! definition. The visual editor replaces this page.

use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api;
use crate::components::status::{ErrorNotice, Loading};

/// The workflow page (placeholder for the editor).
#[component]
pub fn WorkflowPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id")).unwrap_or_default());
    let workflow = LocalResource::new(move || {
        let id = id.get();
        async move { api::workflows::fetch(&id).await }
    });
    move || match workflow.get() {
        None => view! { <Loading label="Loading the workflow…"/> }.into_any(),
        Some(Err(error)) => view! {
            <div class="page-header">
                <h1 data-testid="page-title">"Workflow"</h1>
            </div>
            <ErrorNotice error=error on_retry=move |()| workflow.refetch()/>
            <p class="back-link"><A href="/workflows">"← All workflows"</A></p>
        }
        .into_any(),
        Some(Ok(w)) => {
            let definition = serde_json::to_string_pretty(&w.definition)
                .unwrap_or_else(|_| w.definition.to_string());
            let badge = if w.is_published() {
                "badge badge-ok"
            } else {
                "badge"
            };
            view! {
                <p class="back-link"><A href="/workflows">"← All workflows"</A></p>
                <div class="page-header page-header-row">
                    <h1 data-testid="page-title">{w.name.clone()}</h1>
                    <span class=badge data-testid="workflow-status">{w.status_label()}</span>
                </div>
                <section class="card">
                    <div class="card-header">
                        <h2 class="card-title">"Definition"</h2>
                        <A
                            href=format!("/webhooks?workflow={}", w.id)
                            attr:class="button button-secondary button-small"
                        >
                            "Webhooks"
                        </A>
                    </div>
                    <pre class="code-block" data-testid="workflow-definition">{definition}</pre>
                    <p class="card-footnote">"The visual editor will live on this page."</p>
                </section>
            }
            .into_any()
        }
    }
}
