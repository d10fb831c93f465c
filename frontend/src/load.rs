//! Loading API answers into signals pages render.
//!
//! Leptos' `LocalResource` costs several KB of wasm per use (its async
//! machinery is instantiated for every future type), and the SPA's size is
//! a budget. [`Fetch`] does the same job for the SPA's needs — load when
//! created, again when a signal the fetcher reads changes or on
//! [`Fetch::refetch`], keep the last answer shown meanwhile, drop answers
//! that a newer load superseded — with one shared, type-erased driver.
//! [`load`] is the one-shot form.

use std::cell::Cell;
use std::rc::Rc;

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

/// A value loaded by an async fetcher, `None` until the first answer.
pub struct Fetch<T: Send + Sync + 'static> {
    value: RwSignal<Option<T>>,
    start: StoredValue<Rc<dyn Fn()>, LocalStorage>,
}

impl<T: Send + Sync + 'static> Clone for Fetch<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T: Send + Sync + 'static> Copy for Fetch<T> {}

/// A load in flight: its answer's `store` step comes out at the end.
type Load = LocalBoxFuture<'static, Box<dyn FnOnce()>>;

/// The loads of one [`Fetch`] (or of one signal, [`Generations::load`]): a
/// load's answer is kept only if no newer load started meanwhile.
#[derive(Clone, Default)]
pub struct Generations(Rc<Cell<u64>>);

impl Generations {
    /// Runs `store(answer)` for `fut`'s answer unless superseded. Not
    /// generic, so it exists once in the wasm.
    fn drive(&self, fut: Load) {
        let mine = self.0.get().wrapping_add(1);
        self.0.set(mine);
        let current = self.0.clone();
        spawn_local(async move {
            let store = fut.await;
            if current.get() == mine {
                store();
            }
        });
    }

    /// Runs `call` and stores its answer in `into` (unless the page is gone
    /// or a newer load of these generations started meanwhile).
    pub fn load<T: Send + Sync + 'static>(
        &self,
        into: Loaded<T>,
        call: impl Future<Output = Result<T, Error>> + 'static,
    ) {
        self.drive(
            async move {
                let answer = call.await;
                Box::new(move || {
                    let _ = into.try_set(Some(answer));
                }) as Box<dyn FnOnce()>
            }
            .boxed_local(),
        );
    }
}

impl<T: Send + Sync + 'static> Fetch<T> {
    /// Loads `fetcher()` now, and again whenever a signal it reads (before
    /// its first `.await`) changes.
    pub fn new<Fut>(fetcher: impl Fn() -> Fut + 'static) -> Self
    where
        Fut: Future<Output = T> + 'static,
    {
        let value = RwSignal::new(None::<T>);
        let generations = Generations::default();
        let fetch: Rc<dyn Fn() -> Load> = Rc::new(move || {
            let fut = fetcher();
            async move {
                let answer = fut.await;
                Box::new(move || {
                    let _ = value.try_set(Some(answer));
                }) as Box<dyn FnOnce()>
            }
            .boxed_local()
        });
        let start: Rc<dyn Fn()> = {
            let fetch = fetch.clone();
            let generations = generations.clone();
            Rc::new(move || generations.drive(untrack(|| fetch())))
        };
        Effect::new(move |_| generations.drive(fetch()));
        Self {
            value,
            start: StoredValue::new_local(start),
        }
    }

    /// Loads again; the current value stays until the answer is there.
    pub fn refetch(&self) {
        if let Some(start) = self.start.try_get_value() {
            start();
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Fetch<T> {
    /// The latest answer (tracked).
    pub fn get(&self) -> Option<T> {
        self.value.get()
    }

    /// The latest answer (untracked).
    pub fn get_untracked(&self) -> Option<T> {
        self.value.get_untracked()
    }

    /// The latest answer (untracked), `None` when the page is gone.
    pub fn try_get_untracked(&self) -> Option<Option<T>> {
        self.value.try_get_untracked()
    }
}
