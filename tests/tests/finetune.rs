//! Fine-tuning in the tab, end to end, on the WebGPU path and on the CPU fallback: photos the
//! shipped model gets wrong are labelled by "the user", the model is fine-tuned, and then
//! those photos get the user's labels, held-out accuracy drops by at most 2 points, the model
//! survives a reload, the downloaded weights score the same under `trainer evaluate`, its
//! ONNX download runs in onnxruntime with the same logits, a saved project opens in a fresh
//! browser profile with the model and the taught photos,
//! nothing but the page's own sample sets was fetched, and after Reset the tab's storage
//! holds nothing of the user's.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use page_tests::{
    LONGEST_TASK_MS,
    browser::{Browser, Gpu, session},
    fixtures,
    server::StaticServer,
};
use serde_json::{Value, json};

/// Photos to teach: enough to be a real correction, few enough to label by hand.
const WRONG: usize = 4;

#[test]
fn fine_tune_on_webgpu() {
    session(Gpu::WebGpu, async |browser, server| scenario(browser, server, Gpu::WebGpu).await);
}

#[test]
fn fine_tune_on_cpu() {
    session(Gpu::Unavailable, async |browser, server| scenario(browser, server, Gpu::Unavailable).await);
}

/// After one visit the page works with the network gone: reload, classify, fine-tune. The
/// service worker answers from its cache; the only request that reaches the (dead) server is
/// the browser's own check for a new `sw.js`. A damaged offline copy is removed with a clear
/// message, and the fine-tuned model survives it.
#[test]
fn works_offline_after_the_first_visit() {
    session(Gpu::Unavailable, async |browser, server| {
        let dir = tempfile::tempdir()?;
        let wrong = wrongly_classified(dir.path())?;
        let paths: Vec<PathBuf> = wrong.iter().map(|p| p.path.clone()).collect();
        let files: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
        browser.client.goto(&server.url).await?;
        browser.wait_ready(Duration::from_secs(300)).await?;
        browser.wait_for_offline_copy().await?;

        server.set_offline(true);
        let online_requests = server.requests().len();
        browser.client.refresh().await?;
        browser.wait_ready(Duration::from_secs(300)).await?;
        upload_and_wait(browser, &paths).await?;
        ensure!(labels_on_page(browser, &files).await?.iter().all(Option::is_some), "photos not classified offline");
        for (file, photo) in files.iter().zip(&wrong) {
            let select = browser.client.find(Locator::Css(&format!(".card[data-file=\"{file}\"] [data-testid=teach]"))).await?;
            select.select_by_value(&photo.label.to_string()).await?;
        }
        // A class of the user's own works offline too: added, taught a photo of a hat, learnt.
        browser
            .eval(
                "const e = document.querySelector('[data-testid=class-name]'); e.value = 'Hat'; e.dispatchEvent(new Event('input', { bubbles: true }));",
                vec![],
            )
            .await?;
        browser.client.find(Locator::Css("[data-testid=add-class]")).await?.click().await?;
        let hat = fixtures::hat_photos(dir.path(), 0..1)?;
        browser.upload(&hat).await?;
        browser
            .wait_for(
                &format!(
                    "document.querySelectorAll('.card [data-testid=prediction]').length >= {} && !document.querySelector('.card .working')",
                    files.len() + 1
                ),
                Duration::from_secs(300),
            )
            .await?;
        browser.client.find(Locator::Css(".card[data-file=\"hat-000.jpg\"] [data-testid=teach]")).await?.select_by_value("10").await?;
        browser.client.find(Locator::Css("[data-testid=finetune]")).await?.click().await?;
        browser.wait_for("document.querySelector('[data-testid=finetune-done]')", Duration::from_secs(900)).await?;
        let learnt = browser.eval("return document.querySelector('[data-testid=own-class]')?.dataset.learnt", vec![]).await?;
        ensure!(learnt == json!("true"), "the class added offline was not learnt: {learnt}");
        let offline = server.requests()[online_requests..].to_vec();
        eprintln!("requests that met the dead server: {offline:?}");
        ensure!(offline.iter().all(|r| r.starts_with("/sw.js")), "offline, the page still asked the server for {offline:?}");

        // A damaged offline copy (the app's wasm replaced by junk), still offline: the page says so and
        // removes the copy, and keeps the fine-tuned model; back online, a reload works again.
        browser
            .eval_promise(
                "caches.keys().then(keys => caches.open(keys.find(k => k.startsWith('fashion-')))).then(cache =>
                   cache.keys().then(requests => cache.put(requests.find(r => r.url.endsWith(document.querySelector('script[data-wasm]').dataset.wasm.slice(1))),
                     new Response(new Uint8Array([0, 97, 115, 109, 9, 9]), { headers: { 'Content-Type': 'application/wasm' } }))))",
                vec![],
            )
            .await?;
        browser.client.refresh().await?;
        browser.wait_for("document.querySelector('[data-testid=error]')", Duration::from_secs(120)).await?;
        let message = browser.eval("return document.querySelector('[data-testid=error]').textContent", vec![]).await?;
        let message = message.as_str().unwrap_or_default();
        ensure!(message.contains("offline copy") && message.contains("damaged") && message.contains("kept"), "unclear message: {message}");
        let left = browser.eval_promise("caches.keys().then(keys => keys.filter(k => k.startsWith('fashion-')))", vec![]).await?;
        ensure!(left == json!([]), "the damaged offline copy is still there: {left}");
        server.set_offline(false);
        browser.client.refresh().await?;
        browser.wait_ready(Duration::from_secs(300)).await?;
        let notice = browser.eval("return document.querySelector('.banner.notice')?.textContent ?? ''", vec![]).await?;
        ensure!(notice.as_str().unwrap_or_default().contains("fine-tuned model, restored"), "the fine-tuned model was lost: {notice}");
        browser.wait_for_offline_copy().await?;
        Ok(())
    });
}

/// Test items (past the held-out slice) whose photos the shipped model gets wrong.
fn wrongly_classified(dir: &std::path::Path) -> Result<Vec<fixtures::Photo>> {
    let photos = fixtures::photos(dir, 1000, 200)?;
    let paths: Vec<PathBuf> = photos.iter().map(|p| p.path.clone()).collect();
    let labels = fixtures::trainer_labels(&paths)?;
    let wrong: Vec<_> = photos.into_iter().zip(labels).filter(|(p, l)| p.label != *l).map(|(p, _)| p).take(WRONG).collect();
    ensure!(wrong.len() == WRONG, "fewer than {WRONG} misclassified photos among 200");
    Ok(wrong)
}

async fn labels_on_page(browser: &Browser, files: &[String]) -> Result<Vec<Option<u64>>> {
    let value = browser
        .eval(
            "return arguments[0].map(f => { const p = document.querySelector(`.card[data-file=\"${f}\"] [data-testid=prediction]`); return p ? Number(p.dataset.label) : null; })",
            vec![json!(files)],
        )
        .await?;
    Ok(value.as_array().unwrap().iter().map(Value::as_u64).collect())
}

/// The CNN weights file in use (what "Download weights" saves).
async fn current_weights(browser: &Browser) -> Result<Vec<u8>> {
    let weights = browser.eval_promise("Array.from(wasmBindings.fashionCurrentWeights())", vec![]).await?;
    Ok(weights.as_array().context("weights bytes")?.iter().map(|v| v.as_u64().unwrap_or(0) as u8).collect())
}

async fn upload_and_wait(browser: &Browser, paths: &[PathBuf]) -> Result<()> {
    browser.upload(paths).await?;
    let n = paths.len();
    browser
        .wait_for(
            &format!(
                "document.querySelectorAll('.card [data-testid=prediction]').length >= {n} && !document.querySelector('.card .working')"
            ),
            Duration::from_secs(300),
        )
        .await
}

async fn scenario(browser: &Browser, server: &StaticServer, gpu: Gpu) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let wrong = wrongly_classified(dir.path())?;
    let paths: Vec<PathBuf> = wrong.iter().map(|p| p.path.clone()).collect();
    let files: Vec<String> = paths.iter().map(|p| p.file_name().unwrap().to_string_lossy().into_owned()).collect();
    let truth: Vec<u64> = wrong.iter().map(|p| p.label as u64).collect();

    // One more photo, taught and held out: fine-tuning measures the model on it and must not
    // learn from it.
    let held = fixtures::photos(dir.path(), 2000, 1)?.remove(0);
    let held_file = held.path.file_name().unwrap().to_string_lossy().into_owned();

    browser.client.goto(&server.url).await?;
    browser.wait_ready(Duration::from_secs(300)).await?;
    browser.wait_for_offline_copy().await?;
    let assets_loaded = server.requests().len();
    upload_and_wait(browser, &[paths.clone(), vec![held.path.clone()]].concat()).await?;
    let before = labels_on_page(browser, &files).await?;
    ensure!(before.iter().zip(&truth).all(|(b, t)| *b != Some(*t)), "the page already gets some right: {before:?} vs {truth:?}");

    // The user picks the right class under each photo.
    for (file, label) in files.iter().zip(&truth) {
        let select = browser.client.find(Locator::Css(&format!(".card[data-file=\"{file}\"] [data-testid=teach]"))).await?;
        select.select_by_value(&label.to_string()).await?;
    }
    let held_card = format!(".card[data-file=\"{held_file}\"]");
    browser.client.find(Locator::Css(&format!("{held_card} [data-testid=teach]"))).await?.select_by_value(&held.label.to_string()).await?;
    browser.client.find(Locator::Css(&format!("{held_card} [data-testid=held-out]"))).await?.click().await?;
    let button = browser.client.find(Locator::Css("[data-testid=finetune]")).await?.text().await?;
    ensure!(button.contains(&format!("on {WRONG} photo(s), 1 held out")), "the fine-tune button says {button:?}");
    // Cancel stops a run within a step or so and leaves the model as it was.
    let shipped = std::fs::read(page_tests::root().join("web/cnn.fmw"))?;
    browser.client.find(Locator::Css("[data-testid=finetune]")).await?.click().await?;
    browser.wait_for("Number(document.querySelector('[data-testid=finetune-progress]')?.value) >= 1", Duration::from_secs(300)).await?;
    browser.client.find(Locator::Css("[data-testid=finetune-cancel]")).await?.click().await?;
    browser.wait_for("document.body.textContent.includes('Fine-tuning cancelled')", Duration::from_secs(120)).await?;
    ensure!(current_weights(browser).await? == shipped, "a cancelled fine-tune changed the model");

    let started = std::time::Instant::now();
    browser.observe_long_tasks().await?;
    browser.client.find(Locator::Css("[data-testid=finetune]")).await?.click().await?;
    browser.wait_for("document.querySelector('[data-testid=finetune-done]')", Duration::from_secs(900)).await?;
    let longest = browser.longest_task_ms().await?;
    eprintln!("fine-tuning took {:.0} s; longest main-thread task during it {longest:.0} ms", started.elapsed().as_secs_f64());
    // On the CPU it trains in a worker. On WebGPU it runs on the page, one step per task
    // (wgpu's browser backend lives on the main thread there): reported, not bounded.
    if gpu == Gpu::Unavailable {
        ensure!(longest <= LONGEST_TASK_MS, "a {longest:.0} ms main-thread task while the model was fine-tuned on the CPU");
    }
    let done = browser
        .eval(
            "const d = document.querySelector('[data-testid=finetune-done]').dataset;
             return [Number(d.heldoutBefore), Number(d.heldoutAfter), Number(d.userBefore), Number(d.userAfter),
                     Number(d.userImages), Number(d.userHeldoutImages), Number(d.userHeldoutBefore), Number(d.userHeldoutAfter)]",
            vec![],
        )
        .await?;
    let f = |i: usize| done[i].as_f64().unwrap();
    let (heldout_before, heldout_after, user_before, user_after) = (f(0), f(1), f(2), f(3));
    eprintln!("held-out {heldout_before:.4} → {heldout_after:.4}; user photos {user_before:.2} → {user_after:.2}");
    ensure!(user_before == 0.0 && user_after == 1.0, "user photos {user_before} → {user_after}");
    ensure!(f(4) == WRONG as f64, "fine-tuning learnt from {} photos; {WRONG} were taught and not held out", f(4));
    let (user_held_before, user_held_after) = (f(6), f(7));
    eprintln!("the user's held-out photo: {user_held_before} → {user_held_after}");
    ensure!(f(5) == 1.0 && [0.0, 1.0].contains(&user_held_before) && [0.0, 1.0].contains(&user_held_after), "held-out report {done}");
    ensure!(heldout_after >= heldout_before - 0.02, "held-out accuracy fell from {heldout_before} to {heldout_after}");

    // Every card was classified again with the new model: the photos now get the user's labels.
    browser.wait_for("!document.querySelector('.card .working')", Duration::from_secs(120)).await?;
    let after = labels_on_page(browser, &files).await?;
    ensure!(
        after == truth.iter().map(|&t| Some(t)).collect::<Vec<_>>(),
        "after fine-tuning the page says {after:?}, the user said {truth:?}"
    );

    // Each card shows what the model said before fine-tuning beside the new answer.
    let previous = browser
        .eval(
            "return arguments[0].map(f => { const b = document.querySelector(`.card[data-file=\"${f}\"] [data-testid=before]`);
                                            return b ? [b.dataset.class, b.dataset.changed] : null; })",
            vec![serde_json::json!(files)],
        )
        .await?;
    for ((shown, was), file) in previous.as_array().context("previous answers")?.iter().zip(&before).zip(&files) {
        let was_named = was.map(|w| fashion_model::CLASS_NAMES[w as usize]);
        ensure!(shown[0].as_str() == was_named && shown[1] == "true", "{file}: previous answer shown as {shown}, it was {was_named:?}");
    }

    // Fine-tuning fetched only the page's own sample sets and, for the CPU's worker, the
    // engine module; nothing else (besides the browser's own check for a new `sw.js`, which
    // it makes when it likes). Nothing of the user's goes anywhere.
    let fetched = server.requests()[assets_loaded..].to_vec();
    let site_file = |r: &str| {
        ["/replay.fms", "/heldout.fms", "/finetune-worker.js", "/engine.js", "/engine_bg.wasm"].contains(&r) || r.starts_with("/sw.js")
    };
    ensure!(fetched.iter().all(|r| site_file(r)), "requests during upload and fine-tuning: {fetched:?}");

    // The downloaded file is the trainer's format and scores the same held-out slice the same.
    let bytes = current_weights(browser).await?;
    let file = dir.path().join("fine-tuned.fmw");
    std::fs::write(&file, &bytes)?;
    let evaluated = fixtures::trainer_evaluate(&file, 500)?;
    eprintln!("trainer evaluate on the downloaded weights: {evaluated:.4} (page said {heldout_after:.4})");
    ensure!((evaluated - heldout_after).abs() <= 1.0 / 500.0 + 1e-9, "trainer evaluate says {evaluated}, the page said {heldout_after}");

    // "Download ONNX" offers the fine-tuned model, which onnxruntime runs with the logits
    // `trainer predict` gives for the downloaded weights.
    browser.capture_downloads().await?;
    browser.client.find(Locator::Css("[data-testid=download-onnx]")).await?.click().await?;
    let (name, onnx) = browser.last_download().await?;
    ensure!(name == "fashion-cnn-fine-tuned.onnx", "downloaded as {name:?}");
    let onnx_file = dir.path().join(&name);
    std::fs::write(&onnx_file, &onnx)?;
    let (inputs, logits) = fixtures::trainer_logits(&file, dir.path(), 0, 100)?;
    let report = testkit::onnx::onnxruntime_report(&onnx_file, &inputs, &logits).map_err(anyhow::Error::msg)?;
    eprintln!("the page's ONNX file in onnxruntime: {report}");
    ensure!(report["max_abs_diff"].as_f64().is_some_and(|d| d <= 1e-4), "onnxruntime and trainer predict differ: {report}");

    // "Save project" offers the taught photos and the model in use as one file; a fresh
    // browser profile opens it and has the fine-tuned model and the taught photos back,
    // labelled as they were and answered as here.
    browser.client.find(Locator::Css("[data-testid=save-project]")).await?.click().await?;
    browser.wait_for("window.__downloads.length >= 2", Duration::from_secs(60)).await?;
    let (name, project) = browser.last_download().await?;
    ensure!(name == "fashion-project.fmproj", "the project was offered as {name:?}");
    let project_file = dir.path().join(&name);
    std::fs::write(&project_file, &project)?;
    // It holds the taught photos with their labels, and the model in use.
    let saved = fashion_gallery::project::Project::decode(&project)?;
    ensure!(saved.model == bytes, "the project's model is not the one in use");
    let mut saved_photos: Vec<(String, u64)> = saved.photos.iter().map(|p| (p.name.clone(), p.label as u64)).collect();
    let mut taught_photos: Vec<(String, u64)> = files.iter().cloned().zip(truth.iter().copied()).collect();
    taught_photos.push((held_file.clone(), held.label as u64));
    saved_photos.sort();
    taught_photos.sort();
    ensure!(saved_photos == taught_photos, "the project holds {saved_photos:?}, the user taught {taught_photos:?}");
    let held_out: Vec<&str> = saved.photos.iter().filter(|p| p.held_out).map(|p| p.name.as_str()).collect();
    ensure!(held_out == [held_file.as_str()], "the project holds {held_out:?} as held out");
    ensure!(saved.photos.iter().all(|p| p.thumbnail.is_some()), "a photo was saved without its thumbnail");
    // What the fine-tuned model answers for the saved 28×28 inputs (gray levels: the page's
    // own inputs rounded to 1/255).
    let inputs: Vec<Vec<u8>> = saved.photos.iter().map(|p| p.input.clone()).collect();
    let expected: std::collections::HashMap<String, Option<u64>> = saved
        .photos
        .iter()
        .zip(fixtures::trainer_logits_as_is(&file, dir.path(), &inputs)?)
        .map(|(p, logits)| (p.name.clone(), Some(fashion_model::network::argmax(&logits) as u64)))
        .collect();
    let expected: Vec<Option<u64>> = files.iter().map(|f| expected[f]).collect();
    let fresh = Browser::launch(gpu).await?;
    let opened = async {
        fresh.client.goto(&server.url).await?;
        fresh.wait_ready(Duration::from_secs(300)).await?;
        fresh.choose_files("open-project", &[project_file.clone()]).await?;
        fresh
            .wait_for("document.querySelector('.banner.notice')?.textContent.includes('Opened fashion-project.fmproj')", Duration::from_secs(120))
            .await?;
        fresh
            .wait_for(
                &format!("document.querySelectorAll('.card [data-testid=prediction]').length >= {WRONG} && !document.querySelector('.card .working')"),
                Duration::from_secs(300),
            )
            .await?;
        ensure!(current_weights(&fresh).await? == bytes, "the opened project's model is not the fine-tuned one");
        let labels = labels_on_page(&fresh, &files).await?;
        ensure!(labels == expected, "in a fresh profile the project's photos are answered {labels:?}; trainer predict says {expected:?}");
        let taught = fresh
            .eval(
                "return arguments[0].map(f => Number(document.querySelector(`.card[data-file=\"${f}\"] [data-testid=teach]`)?.value))",
                vec![json!(files)],
            )
            .await?;
        ensure!(taught == json!(truth), "the opened photos are taught {taught}, they were taught {truth:?}");
        let ticked = fresh.eval(&format!("return document.querySelector('{held_card} [data-testid=held-out]')?.checked"), vec![]).await?;
        ensure!(ticked == json!(true), "the held-out photo opened with its box {ticked}");
        anyhow::Ok(())
    }
    .await;
    let _ = fresh.close().await;
    opened?;

    // A reload restores the fine-tuned model from IndexedDB.
    browser.client.refresh().await?;
    browser.wait_ready(Duration::from_secs(300)).await?;
    let notice = browser.eval("return document.querySelector('.banner.notice')?.textContent ?? ''", vec![]).await?;
    ensure!(notice.as_str().unwrap_or_default().contains("fine-tuned model, restored"), "no restore notice: {notice}");
    upload_and_wait(browser, &paths).await?;
    let reloaded = labels_on_page(browser, &files).await?;
    ensure!(reloaded == after, "after a reload the page says {reloaded:?}");

    // Reset returns to the shipped model.
    browser.client.find(Locator::Css("[data-testid=reset-model]")).await?.click().await?;
    browser
        .wait_for("document.querySelector('.banner.notice')?.textContent.includes('Back to the shipped model')", Duration::from_secs(60))
        .await?;
    ensure!(current_weights(browser).await? == shipped, "reset did not restore the shipped weights");

    // Where the tab keeps anything: the fine-tuned model in IndexedDB, until Reset; the
    // user's photos nowhere.
    let kept = browser
        .eval_promise(
            "(async () => {
                const names = (await indexedDB.databases()).map(d => d.name);
                const db = await new Promise((ok, no) => { const r = indexedDB.open('fashion-mnist'); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); });
                const keys = db.objectStoreNames.contains('models')
                    ? await new Promise((ok, no) => { const r = db.transaction('models').objectStore('models').getAllKeys(); r.onsuccess = () => ok(r.result); r.onerror = () => no(r.error); })
                    : [];
                db.close();
                return { databases: names, stored: keys, localStorage: localStorage.length, sessionStorage: sessionStorage.length,
                         caches: await caches.keys(),
                         cached: (await Promise.all((await caches.keys()).map(async k => (await (await caches.open(k)).keys()).map(r => new URL(r.url).pathname)))).flat() };
            })()",
            vec![],
        )
        .await?;
    eprintln!("browser storage after Reset: {kept}");
    ensure!(kept["stored"].as_array().is_some_and(Vec::is_empty), "Reset left a model in IndexedDB: {kept}");
    ensure!(kept["databases"] == json!(["fashion-mnist"]), "unexpected IndexedDB databases: {kept}");
    ensure!(kept["localStorage"] == 0 && kept["sessionStorage"] == 0, "the page stored something else: {kept}");
    // The one cache is the offline copy of the site: its own files, nothing of the user's.
    let cache_names = kept["caches"].as_array().context("cache names")?;
    ensure!(cache_names.len() <= 1 && cache_names.iter().all(|n| n.as_str().is_some_and(|n| n.starts_with("fashion-"))), "caches: {kept}");
    for path in kept["cached"].as_array().context("cached files")? {
        let file = page_tests::server::site_file(&page_tests::dist(), path.as_str().unwrap_or_default());
        ensure!(file.is_some(), "the cache holds {path}, not a file of the site");
    }
    Ok(())
}
