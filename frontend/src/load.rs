//! Loading an API answer into a signal a page renders. The metrics and
//! alerts pages use this instead of a `LocalResource` per call: every
//! resource (and every typed answer) is its own few KB of wasm, while this
//! loader is shared.

use futures::FutureExt;
use futures::future::LocalBoxFuture;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::Error;

/// An answer as a page shows it: `None` while loading.
pub type Loaded<T> = RwSignal<Option<Result<T, Error>>>;

/// Runs `call` and stores its answer in `into` (unless the page is gone).
pub fn load<T: Send + Sync + 'static>(
    into: Loaded<T>,
    call: impl Future<Output = Result<T, Error>> + 'static,
) {
    let call: LocalBoxFuture<'static, Result<T, Error>> = call.boxed_local();
    spawn_local(async move {
        let answer = call.await;
        let _ = into.try_set(Some(answer));
    });
}
