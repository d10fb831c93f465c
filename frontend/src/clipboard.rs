//! Copying text to the clipboard (`navigator.clipboard.writeText`), looked
//! up at run time so browsers without it just report failure.

use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Copies `text`; false when the browser refused or has no clipboard API.
pub async fn copy(text: &str) -> bool {
    let Some(promise) = write_text(text) else {
        return false;
    };
    JsFuture::from(promise).await.is_ok()
}

fn write_text(text: &str) -> Option<js_sys::Promise> {
    let navigator = web_sys::window()?.navigator();
    let clipboard = js_sys::Reflect::get(&navigator, &JsValue::from_str("clipboard")).ok()?;
    if clipboard.is_undefined() || clipboard.is_null() {
        return None;
    }
    let write = js_sys::Reflect::get(&clipboard, &JsValue::from_str("writeText"))
        .ok()?
        .dyn_into::<js_sys::Function>()
        .ok()?;
    write
        .call1(&clipboard, &JsValue::from_str(text))
        .ok()?
        .dyn_into::<js_sys::Promise>()
        .ok()
}
