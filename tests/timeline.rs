//! `vmm --timeline FILE.svg`: the run drawn as OSTEP's figure 6.3. The SVG must render with a
//! real renderer (rsvg-convert), and at times taken from the same run's `--trace`, the right
//! lane must have the right colour: a spinner's lane is "has the CPU" while it runs, and the
//! kernel lane marks the timer's preemption of it. The HTML page's script runs under node
//! against stand-ins, and the page loads in headless Chromium without a console error.

mod common;
use common::lde::*;

use serde_json::Value;

const USER: [u8; 3] = [0x2e, 0x9e, 0x44];
const PREEMPT: [u8; 3] = [0xf0, 0x8c, 0x00];
const TIMER: [u8; 3] = [0xf2, 0xc1, 0x2e];
const SYSCALL: [u8; 3] = [0x1f, 0x6f, 0xd1];

/// A number attribute of the SVG's root element.
fn attr(svg: &str, name: &str) -> f64 {
    let key = format!("{name}=\"");
    let at = svg.find(&key).unwrap_or_else(|| panic!("no {name}")) + key.len();
    svg[at..].split('"').next().unwrap().parse().unwrap()
}

/// The picture as rsvg-convert draws it, 4 times wider than the SVG's own size: a 10 ms time
/// slice of a 4 s run is 3.4 units wide, too narrow to sample its middle safely at 1:1 (only
/// the first slice was wider than 6 units, and on a loaded machine none was).
struct Png {
    buf: Vec<u8>,
    width: usize,
    channels: usize,
}

const ZOOM_X: f64 = 4.0;

/// The tests below check what happened in a few milliseconds of guest time. The guest's clock
/// runs on while the host deschedules its vCPU, so three VMs at once on a 2-core machine could
/// leave a window empty (seen once in CI: no preemption in a 30 ms window): one VM at a time.
static ONE_VM_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_vm_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_VM_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Png {
    fn render(svg: &std::path::Path, png: &std::path::Path) -> Png {
        let out = std::process::Command::new("rsvg-convert")
            .args(["--x-zoom", &ZOOM_X.to_string()])
            .arg(svg)
            .arg("-o")
            .arg(png)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rsvg-convert: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decoder = png::Decoder::new(std::fs::File::open(png).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut buf).unwrap();
        Png {
            buf,
            width: info.width as usize,
            channels: info.color_type.samples(),
        }
    }

    /// The colour at (x, y) in the SVG's units.
    fn pixel(&self, x: f64, y: f64) -> [u8; 3] {
        let (x, y) = ((x * ZOOM_X) as usize, y as usize);
        let i = (y * self.width + x) * self.channels;
        [self.buf[i], self.buf[i + 1], self.buf[i + 2]]
    }
}

#[test]
fn the_timeline_renders_and_shows_a_spinner_running_and_preempted() {
    require_tool(
        "rsvg-convert",
        "rsvg-convert is needed: apt-get install librsvg2-bin",
    );
    let dir = common::scratch_dir("timeline");
    let (svg_path, json_path, png_path) = (
        dir.join("demo.svg"),
        dir.join("demo.json"),
        dir.join("demo.png"),
    );
    let _one = one_vm_at_a_time();
    let run = run_vmm_lde([
        "--timeline",
        svg_path.to_str().unwrap(),
        "--trace",
        json_path.to_str().unwrap(),
    ]);
    run.assert_status(0);
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG");
    let png = Png::render(&svg_path, &png_path);
    let pixel = |x: f64, y: f64| png.pixel(x, y);
    let (t0, t1) = (attr(&svg, "data-t0-ns"), attr(&svg, "data-t1-ns"));
    let (px, pw) = (attr(&svg, "data-plot-x"), attr(&svg, "data-plot-width"));
    let x_of = |ts_us: f64| px + (ts_us * 1000.0 - t0) / (t1 - t0) * pw;

    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let evs = trace["traceEvents"].as_array().unwrap();
    let spin = evs
        .iter()
        .find(|e| e["ph"] == "M" && e["args"]["name"].as_str().unwrap().ends_with(" spin"))
        .and_then(|e| e["pid"].as_u64())
        .expect("a spin track");
    let lane = attr(&svg, &format!("data-lane-y-{spin}"));
    let kernel_lane = attr(&svg, "data-lane-y-0");
    // The spinner's "running" slices: the middle of each wide one is drawn as "has the CPU"
    // (its band's top edge, above any system call drawn inside it).
    let ts = |e: &Value| e["ts"].as_f64().unwrap();
    let mut begin = None;
    let mut checked = 0;
    for e in evs
        .iter()
        .filter(|e| e["pid"] == spin && e["name"] == "running")
    {
        match e["ph"].as_str() {
            Some("B") => begin = Some(ts(e)),
            Some("E") => {
                let (a, b) = (x_of(begin.take().unwrap()), x_of(ts(e)));
                if (b - a) * ZOOM_X > 6.0 {
                    assert_eq!(pixel((a + b) / 2.0, lane + 2.0), USER, "at x {a}..{b}");
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    assert!(checked > 0, "no spin slice wide enough to check");
    // Its preemptions: a timer mark on the kernel lane, where no other switch is near.
    let switches: Vec<f64> = evs
        .iter()
        .filter(|e| e["cat"] == "sched" && e["ph"] == "i")
        .map(|e| x_of(ts(e)))
        .collect();
    let lonely = evs
        .iter()
        .filter(|e| {
            e["cat"] == "sched" && e["args"]["from"] == spin && e["args"]["why"] == "preempt"
        })
        .map(|e| x_of(ts(e)))
        .find(|x| switches.iter().filter(|s| (*s - x).abs() < 4.0).count() == 1)
        .expect("a preemption of spin away from other switches");
    // Switch marks are 1 unit wide (4 pixels drawn) along the top of the kernel lane: its
    // middle.
    assert_eq!(pixel(lonely, kernel_lane + 3.0), PREEMPT);
}

/// `--timeline-window` draws a part of the run in detail: 30 ms of two programs that spin
/// forever, where each time slice ends in a timer interrupt (yellow, on the kernel lane) that
/// preempts one spinner for the other.
#[test]
fn a_window_of_the_run_shows_the_timer_interrupts_that_preempt() {
    require_tool(
        "rsvg-convert",
        "rsvg-convert is needed: apt-get install librsvg2-bin",
    );
    let dir = common::scratch_dir("timeline_window");
    let (svg_path, json_path, png_path) = (
        dir.join("spin.svg"),
        dir.join("spin.json"),
        dir.join("spin.png"),
    );
    let spin2 = dir.join("spinforever2");
    std::fs::copy(prog("spinforever"), &spin2).unwrap();
    let _one = one_vm_at_a_time();
    let run = run_vmm_lde([
        "--user".to_string(),
        user("spinforever", ""),
        "--user".to_string(),
        spin2.display().to_string(),
        "--timeout".to_string(),
        "3".to_string(),
        "--timeline".to_string(),
        svg_path.display().to_string(),
        "--timeline-window".to_string(),
        "1000ms..1030ms".to_string(),
        "--trace".to_string(),
        json_path.display().to_string(),
    ]);
    assert_eq!(run.status, Some(124), "{}", run.dump());
    let svg = std::fs::read_to_string(&svg_path).expect("the SVG");
    let png = Png::render(&svg_path, &png_path);
    let (t0, t1) = (attr(&svg, "data-t0-ns"), attr(&svg, "data-t1-ns"));
    assert_eq!(t1 - t0, 30e6, "the window is 30 ms wide");
    let (px, pw) = (attr(&svg, "data-plot-x"), attr(&svg, "data-plot-width"));
    let x_of = |ts_us: f64| px + (ts_us * 1000.0 - t0) / (t1 - t0) * pw;
    let kernel_lane = attr(&svg, "data-lane-y-0");
    let trace: Value = serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let evs = trace["traceEvents"].as_array().unwrap();
    let kernel = |e: &&Value| e["pid"] == 0 && e["tid"] == 0;
    let mut begin = None;
    let mut checked = 0;
    for e in evs.iter().filter(kernel).filter(|e| e["name"] == "timer") {
        let ts = e["ts"].as_f64().unwrap();
        match e["ph"].as_str() {
            Some("B") => begin = Some(ts),
            Some("E") => {
                let (a, b) = (x_of(begin.take().unwrap()), x_of(ts));
                // Inside the window, and wide enough to sample its middle.
                if a > px && b < px + pw && (b - a) * ZOOM_X > 3.0 {
                    assert_eq!(
                        png.pixel((a + b) / 2.0, kernel_lane + 10.0),
                        TIMER,
                        "at {a}..{b}"
                    );
                    checked += 1;
                }
            }
            _ => {}
        }
    }
    let preempts = evs
        .iter()
        .filter(kernel)
        .filter(|e| e["name"] == "switch (preempt)")
        .map(|e| x_of(e["ts"].as_f64().unwrap()))
        .filter(|x| *x > px && *x < px + pw)
        .count();
    assert!(preempts > 0, "no preemption in the window");
    assert!(
        checked > 0,
        "no timer interrupt wide enough to check in the window"
    );
}

#[test]
fn an_html_timeline_is_the_picture_with_hover_details_and_a_zoom_script() {
    require_tool(
        "rsvg-convert",
        "rsvg-convert is needed: apt-get install librsvg2-bin",
    );
    let dir = common::scratch_dir("timeline_html");
    let (html_path, svg_path) = (dir.join("hello.html"), dir.join("inner.svg"));
    let _one = one_vm_at_a_time();
    let run = run_vmm_lde([
        "--user".to_string(),
        user("hello", ""),
        "--timeline".to_string(),
        html_path.display().to_string(),
    ]);
    run.assert_status(0);
    let html = std::fs::read_to_string(&html_path).expect("the HTML page");
    assert!(html.starts_with("<!doctype html>"), "{}", &html[..80]);
    for needle in [
        "id=\"plot\"",
        // Hover details: the program's write, its lane, and the kernel's side of the call.
        "pid 1 hello: write: ",
        "<title>pid 1 hello: ",
        "<title>system call write: ",
        "addEventListener(\"wheel\"",
    ] {
        assert!(html.contains(needle), "no {needle:?} in the page");
    }
    // The picture inside is the SVG a renderer draws.
    let (a, b) = (html.find("<svg").unwrap(), html.rfind("</svg>").unwrap());
    std::fs::write(&svg_path, &html[a..b + "</svg>".len()]).unwrap();
    Png::render(&svg_path, &dir.join("inner.png"));

    // The page's script, run by node against a stand-in for the page: ten wheel steps in at
    // the plot's middle zoom by 1.25^10 around that moment; a drag moves the window; a
    // double-click shows everything again.
    require_tool("node", "node is needed: apt-get install nodejs");
    let check = dir.join("zoom.js");
    std::fs::write(&check, ZOOM_CHECK).unwrap();
    let out = std::process::Command::new("node")
        .arg(&check)
        .arg(&html_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    let (t0, t1, first) = (
        attr(&html, "data-t0-ns"),
        attr(&html, "data-t1-ns"),
        attr(&html, "data-first-ns"),
    );
    let range = |line: &str| -> (f64, f64) {
        let v: Vec<f64> = line.split(' ').filter_map(|w| w.parse().ok()).collect();
        (v[0], v[1])
    };
    let (a, b) = range(lines[0]);
    let mid = ((t0 + t1) / 2.0 - first) / 1e6;
    let whole = (t1 - t0) / 1e6;
    assert!(((a + b) / 2.0 - mid).abs() < whole * 0.01, "{text}");
    assert!(
        ((b - a) - whole / 1.25f64.powi(10)).abs() < whole * 0.01,
        "{text}"
    );
    assert!(lines[0].ends_with("(x9.3)"), "{text}");
    let (c, d) = range(lines[1]);
    assert!(
        c < a && d < b && ((d - c) - (b - a)).abs() < whole * 0.01,
        "dragged right: {text}"
    );
    assert_eq!(lines[2], "reset translate(0 0) scale(1 1)", "{text}");
}

/// Headless Chromium loads `page` (a file) and screenshots it into `png`: its standard error,
/// where `--enable-logging=stderr` puts every console message as an `INFO:CONSOLE` line.
fn chromium_screenshot(page: &std::path::Path, png: &std::path::Path) -> String {
    let profile = png.with_extension("profile");
    let out = std::process::Command::new("timeout")
        .args([
            "120",
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
        ])
        .args(["--enable-logging=stderr", "--v=0", "--window-size=1400,600"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("cannot run chromium");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium on {page:?}: {err}");
    err
}

/// The page in a real browser: headless Chromium loads it with no console message (no error
/// from its script) and draws it; the screenshot shows the lanes' colours. A copy of the page
/// with a broken script shows that such an error would be seen.
#[test]
fn an_html_timeline_loads_in_headless_chromium_without_console_errors() {
    require_tool(
        "chromium",
        "chromium is needed: apt-get install chromium (scripts/test installs it)",
    );
    let dir = common::scratch_dir("timeline_chromium");
    let page = dir.join("hello.html");
    let _one = one_vm_at_a_time();
    run_vmm_lde([
        "--user".to_string(),
        user("hello", ""),
        "--timeline".to_string(),
        page.display().to_string(),
    ])
    .assert_status(0);
    let html = std::fs::read_to_string(&page).expect("the HTML page");
    let broken = dir.join("broken.html");
    std::fs::write(
        &broken,
        html.replacen("<script>", "<script>no_such_function();", 1),
    )
    .unwrap();
    let err = chromium_screenshot(&broken, &dir.join("broken.png"));
    assert!(
        err.contains(":CONSOLE") && err.contains("no_such_function"),
        "a broken script's error does not show: {err}"
    );

    let shot = dir.join("hello.png");
    let err = chromium_screenshot(&page, &shot);
    let console: Vec<&str> = err.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    let decoder = png::Decoder::new(std::fs::File::open(&shot).unwrap());
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let n = info.color_type.samples();
    let count = |rgb: [u8; 3]| buf.chunks(n).filter(|p| p[..3] == rgb).count();
    // hello's lane has the CPU across the run, and its write is a system call.
    assert!(
        count(USER) > 1000,
        "too little of hello's green in the screenshot"
    );
    assert!(
        count(SYSCALL) > 100,
        "no system call's blue in the screenshot"
    );
}

/// Runs the HTML page's script with stand-ins for the SVG, the plot group and the status line.
const ZOOM_CHECK: &str = r#"
const html = require("fs").readFileSync(process.argv[2], "utf8");
const script = html.slice(html.indexOf("<script>") + 8, html.indexOf("</script>"));
const num = (name) => +html.match(new RegExp(name + '="([^"]+)"'))[1];
const width = +html.match(/viewBox="0 0 ([0-9.]+)/)[1];
const on = {};
const plot = { attrs: {}, setAttribute(k, v) { this.attrs[k] = v; } };
const view = { textContent: "help", dataset: {} };
const svg = {
  dataset: { plotX: num("data-plot-x"), plotWidth: num("data-plot-width"),
             firstNs: num("data-first-ns"), t0Ns: num("data-t0-ns"), t1Ns: num("data-t1-ns") },
  viewBox: { baseVal: { width } },
  getBoundingClientRect: () => ({ left: 0, width }),
  addEventListener: (ev, f) => { on[ev] = f; },
  querySelectorAll: () => [],
};
global.document = { querySelector: () => svg, getElementById: (id) => (id === "plot" ? plot : view) };
global.window = { addEventListener: (ev, f) => { on["window " + ev] = f; } };
eval(script);
const mid = svg.dataset.plotX + svg.dataset.plotWidth / 2;
for (let i = 0; i < 10; i++) on.wheel({ deltaY: -1, clientX: mid, preventDefault() {} });
console.log(view.textContent);
on.mousedown({ clientX: mid });
on["window mousemove"]({ clientX: mid + 100 });
on["window mouseup"]();
console.log(view.textContent);
on.dblclick();
console.log("reset " + plot.attrs.transform);
"#;
