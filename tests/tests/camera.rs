//! The live camera in headless Chromium, whose fake camera plays a video the tests write: a
//! known Fashion-MNIST item held in front of it. On WebGPU and on the CPU: the live answer,
//! Snap, Hold to record, Stop, and a camera that stops by itself; on the CPU also a refused
//! permission and no camera at all, which must leave the page working.

use std::time::Duration;

use anyhow::{Result, ensure};
use fantoccini::Locator;
use page_tests::{
    browser::{Browser, Gpu, fake_camera, session, session_with},
    fixtures,
};
use serde_json::json;

const TROUSER: u8 = 1;
const BAG: u8 = 8;

#[test]
fn the_camera_answers_live_on_webgpu() {
    let dir = tempfile::tempdir().unwrap();
    let video = fixtures::camera_video(dir.path(), TROUSER).unwrap();
    session_with(Gpu::WebGpu, &fake_camera(&video), async |browser, server| {
        browser.client.goto(&server.url).await?;
        camera_scenario(browser, TROUSER).await
    });
}

#[test]
fn the_camera_answers_live_on_the_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let video = fixtures::camera_video(dir.path(), BAG).unwrap();
    session_with(Gpu::Unavailable, &fake_camera(&video), async |browser, server| {
        browser.client.goto(&format!("{}?backend=cpu", server.url)).await?;
        camera_scenario(browser, BAG).await
    });
}

async fn click(browser: &Browser, testid: &str) -> Result<()> {
    browser.client.find(Locator::Css(&format!("[data-testid={testid}]"))).await?.click().await?;
    Ok(())
}

async fn phase(browser: &Browser) -> Result<String> {
    Ok(browser
        .eval("return document.querySelector('[data-testid=camera-panel]').dataset.phase", vec![])
        .await?
        .as_str()
        .unwrap_or_default()
        .into())
}

async fn card_count(browser: &Browser) -> Result<u64> {
    Ok(browser.eval("return document.querySelectorAll('.card').length", vec![]).await?.as_u64().unwrap_or(0))
}

async fn camera_scenario(browser: &Browser, class: u8) -> Result<()> {
    browser.wait_ready(Duration::from_secs(300)).await?;
    ensure!(phase(browser).await? == "Off", "the camera starts only when asked");

    // Live: the item in front of the camera is named, answer after answer.
    click(browser, "camera-start").await?;
    browser.wait_for("document.querySelector('[data-testid=camera-panel]').dataset.phase === 'Live'", Duration::from_secs(60)).await?;
    browser.observe_long_tasks().await?;
    let answered = format!("document.querySelector('[data-testid=camera-answer]')?.dataset.label === '{class}'");
    browser.wait_for(&answered, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rate = browser.eval("return Number(document.querySelector('[data-testid=camera-rate]').dataset.rate)", vec![]).await?;
    eprintln!("camera: {rate} answers/s");
    ensure!(rate.as_f64().unwrap_or(0.0) >= 1.0, "the camera's answers stopped coming: {rate} answers/s");
    ensure!(browser.eval(&format!("return {answered}"), vec![]).await? == json!(true), "the live answer changed from class {class}");
    let longest = browser.longest_task_ms().await?;
    eprintln!("camera: longest main-thread task {longest:.0} ms");
    ensure!(longest <= page_tests::LONGEST_TASK_MS, "a main-thread task took {longest:.0} ms while the camera ran");

    // Snap: a card of the current frame, answered as a photo.
    click(browser, "camera-snap").await?;
    browser.wait_for("document.querySelector('.card [data-testid=prediction]')", Duration::from_secs(60)).await?;
    let snapped = browser.eval("return Number(document.querySelector('.card [data-testid=prediction]').dataset.label)", vec![]).await?;
    ensure!(snapped == json!(class), "the snapped card says {snapped}, the camera showed class {class}");

    // Record: refused without a class, then a few frames a second while held, taught the class.
    let record = "document.querySelector('[data-testid=camera-record]')";
    browser.eval(&format!("{record}.dispatchEvent(new PointerEvent('pointerdown', {{ bubbles: true }}))"), vec![]).await?;
    browser
        .wait_for(
            "[...document.querySelectorAll('.camera [role=alert]')].some(e => e.textContent.includes('Choose the class'))",
            Duration::from_secs(10),
        )
        .await?;
    browser.eval(&format!("{record}.dispatchEvent(new PointerEvent('pointerup', {{ bubbles: true }}))"), vec![]).await?;
    let select = browser.client.find(Locator::Css("[data-testid=camera-class]")).await?;
    select.select_by_value(&class.to_string()).await?;
    let before = card_count(browser).await?;
    browser.eval(&format!("{record}.dispatchEvent(new PointerEvent('pointerdown', {{ bubbles: true }}))"), vec![]).await?;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    browser.eval(&format!("{record}.dispatchEvent(new PointerEvent('pointerup', {{ bubbles: true }}))"), vec![]).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let recorded = card_count(browser).await? - before;
    ensure!((2..=8).contains(&recorded), "{recorded} frames recorded in 1.5 s (a few a second expected)");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    ensure!(card_count(browser).await? - before == recorded, "frames were still recorded after Record was let go");
    let taught = browser
        .eval(
            &format!("return [...document.querySelectorAll('.card [data-testid=teach]')].filter(s => s.value === '{class}').length"),
            vec![],
        )
        .await?;
    ensure!(taught.as_u64().unwrap_or(0) >= recorded, "only {taught} of {recorded} recorded cards are taught class {class}");

    // Stop: the camera is let go, the page goes on.
    click(browser, "camera-stop").await?;
    ensure!(phase(browser).await? == "Off");
    let released = browser.eval("return document.querySelector('[data-testid=camera-video]').srcObject === null", vec![]).await?;
    ensure!(released == json!(true), "the video still holds the camera after Stop");

    // A camera that stops by itself (unplugged): a clear message, and it can start again.
    click(browser, "camera-start").await?;
    browser.wait_for("document.querySelector('[data-testid=camera-panel]').dataset.phase === 'Live'", Duration::from_secs(60)).await?;
    browser
        .eval(
            "document.querySelector('[data-testid=camera-video]').srcObject.getVideoTracks()[0].dispatchEvent(new Event('ended'))",
            vec![],
        )
        .await?;
    browser
        .wait_for("document.querySelector('[data-testid=camera-error]')?.textContent.includes('camera stopped')", Duration::from_secs(10))
        .await?;
    ensure!(browser.eval("return !!document.querySelector('[data-testid=camera-start]')", vec![]).await? == json!(true));
    click(browser, "camera-start").await?;
    browser.wait_for(&answered, Duration::from_secs(120)).await?;
    click(browser, "camera-stop").await?;
    Ok(())
}

#[test]
fn a_refused_or_missing_camera_is_explained_and_the_page_goes_on() {
    session(Gpu::Unavailable, async |browser, server| {
        // The browser's answer to getUserMedia, chosen by the test before each load.
        browser
            .before_page_scripts(
                "navigator.mediaDevices.getUserMedia = () =>
                     Promise.reject(new DOMException('denied', sessionStorage.getItem('cameraAnswer') ?? 'NotAllowedError'));",
            )
            .await?;
        let url = format!("{}?backend=cpu", server.url);
        for (answer, words) in [("NotAllowedError", "not allowed"), ("NotFoundError", "No camera was found")] {
            browser.client.goto(&url).await?;
            browser.eval(&format!("sessionStorage.setItem('cameraAnswer', '{answer}')"), vec![]).await?;
            browser.wait_ready(Duration::from_secs(300)).await?;
            click(browser, "camera-start").await?;
            browser
                .wait_for(
                    &format!("document.querySelector('[data-testid=camera-error]')?.textContent.includes('{words}')"),
                    Duration::from_secs(10),
                )
                .await?;
            ensure!(phase(browser).await? == "Failed(Refused)" || answer != "NotAllowedError");
            // The page still answers a photo.
            let dir = tempfile::tempdir()?;
            let photo = fixtures::photos(dir.path(), 5, 1)?.remove(0);
            browser.upload(std::slice::from_ref(&photo.path)).await?;
            browser.wait_for("document.querySelector('.card [data-testid=prediction]')", Duration::from_secs(120)).await?;
        }
        Ok(())
    });
}
