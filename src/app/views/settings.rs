//! The settings panel: sampling settings, the follow-up's length, precision.

use leptos::prelude::*;

use super::state;
use crate::app::bridge;
use crate::app::loading;
use crate::app::state::Settings;
use crate::app::link;

fn num_input<T: std::str::FromStr + ToString + Copy + Send + Sync + 'static>(
    label: &'static str,
    id: &'static str,
    step: &'static str,
    get: impl Fn(&Settings) -> T + Copy + Send + Sync + 'static,
    set: impl Fn(&mut Settings, T) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let s = state();
    view! {
        <label class="setting" for=id>
            <span>{label}</span>
            <input
                id=id
                type="number"
                step=step
                prop:value=move || s.settings.with(|x| get(x).to_string())
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<T>() {
                        s.settings.update(|x| set(x, v));
                    }
                }
            />
        </label>
    }
}

/// A new precision: the models are read again at it, and the address says it.
pub(super) fn use_precision(s: crate::app::signals::AppState, p: crate::protocol::Precision) {
    s.settings.update(|x| x.precision = p);
    loading::load_models(s);
    super::question::update_address(s);
}

#[component]
pub(super) fn SettingsPanel() -> impl IntoView {
    let s = state();
    let on_precision = move |ev| {
        if let Some(p) = link::parse_precision(&event_target_value(&ev)) {
            use_precision(s, p);
        }
    };
    let on_threads = move |ev| {
        if let Some(n) = crate::app::threads::parse_threads(&event_target_value(&ev)) {
            s.settings.update(|x| x.threads = n);
            bridge::use_threads(s);
        }
    };
    view! {
        <details class="settings">
            <summary>"Settings and models"</summary>
            <super::picker::ModelPicker/>
            <div class="grid">
                {num_input("max_new_tokens", "max-new-tokens", "1", |x| x.sampling.max_new_tokens, |x, v| x.sampling.max_new_tokens = v)}
                {num_input("max_new_tokens (follow-up)", "follow-up-max", "1", |x| x.follow_up_max_new_tokens, |x, v| x.follow_up_max_new_tokens = v)}
                <label class="setting check" for="do-sample">
                    <input
                        id="do-sample"
                        type="checkbox"
                        prop:checked=move || s.settings.with(|x| x.sampling.do_sample)
                        on:change=move |ev| s.settings.update(|x| x.sampling.do_sample = event_target_checked(&ev))
                    />
                    <span>"do_sample (off: always the most likely token)"</span>
                </label>
                {num_input("temperature", "temperature", "0.1", |x| x.sampling.temperature, |x, v| x.sampling.temperature = v)}
                {num_input("top-p", "top-p", "0.05", |x| x.sampling.top_p, |x, v| x.sampling.top_p = v)}
                {num_input("top-k (0 = off)", "top-k", "1", |x| x.sampling.top_k, |x, v| x.sampling.top_k = v)}
                {num_input("repetition penalty", "repetition-penalty", "0.05", |x| x.sampling.repetition_penalty, |x, v| x.sampling.repetition_penalty = v)}
                {num_input("seed", "seed", "1", |x| x.sampling.seed, |x, v| x.sampling.seed = v)}
                <label class="setting" for="precision">
                    <span>"precision (reloads the models)"</span>
                    <select id="precision" on:change=on_precision>
                        {[("auto", "auto (fastest faithful)"), ("stored", "as stored in the file"), ("f32", "f32"), ("f16", "f16"), ("q8_0", "Q8_0")]
                            .into_iter()
                            .map(|(v, l)| {
                                view! {
                                    <option
                                        value=v
                                        selected=move || s.settings.with(|x| link::precision_name(x.precision) == v)
                                    >
                                        {l}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
                <label class="setting" for="threads">
                    <span>"threads (restarts the engine)"</span>
                    <select id="threads" on:change=on_threads>
                        {(0..=crate::app::threads::MAX_THREADS)
                            .map(|n| {
                                let label = if n == 0 { "auto (one per core, at most 4)".to_string() } else { n.to_string() };
                                view! {
                                    <option value=n.to_string() selected=move || s.settings.with(|x| x.threads == n)>
                                        {label}
                                    </option>
                                }
                            })
                            .collect_view()}
                    </select>
                </label>
            </div>
            <p class="small">
                "Greedy decoding (do_sample off) gives the same answer every time. Changing precision re-reads the weights: "
                "quantization can change an answer. Threads change only the speed: every thread count computes the same bits."
            </p>
        </details>
    }
}
