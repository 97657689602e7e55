//! End to end in a real browser: Debian's chromium, headless, driven through chromedriver
//! with thirtyfour, against the whole platform in this process.
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`scripts/browser-deps.sh`
//! installs them); without them the test fails and says so. Each page visited is saved as a
//! PNG under `target/test-output/screenshots/`.

mod support;

use std::{
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use support::Stack;
use thirtyfour::prelude::*;
use ticketing_common::testing;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";
/// The longest a step waits for an effect (an event handled, a page changed).
const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free port, killed when dropped.
struct Chromedriver {
    url: String,
    _child: tokio::process::Child,
}

impl Chromedriver {
    async fn start() -> Chromedriver {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's chromium and chromium-driver; run scripts/browser-deps.sh (as root it installs them, otherwise it prints the command)"
            );
        }
        let port = testing::free_port();
        let child = tokio::process::Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        let status = format!("{url}/status");
        let ready = testing::eventually(Duration::from_secs(15), || {
            let status = status.clone();
            async move {
                let client = reqwest::Client::builder().no_proxy().build().ok()?;
                client
                    .get(&status)
                    .send()
                    .await
                    .ok()?
                    .status()
                    .is_success()
                    .then_some(())
            }
        })
        .await;
        assert!(ready.is_some(), "chromedriver did not answer on {url}");
        Chromedriver { url, _child: child }
    }

    /// A fresh browser with its own profile (its own cookies), `width` × `height`.
    async fn browser(&self, width: u32, height: u32) -> anyhow::Result<Browser> {
        let profile = std::env::temp_dir().join(format!(
            "ticketing-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&profile)?;
        let mut caps = DesiredCapabilities::chrome();
        caps.set_binary(CHROMIUM)?;
        for arg in [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ] {
            caps.add_arg(arg)?;
        }
        caps.add_arg(&format!("--user-data-dir={}", profile.display()))?;
        caps.add_arg(&format!("--window-size={width},{height}"))?;
        let driver = WebDriver::new(&self.url, caps)
            .await
            .context("start a chromium session")?;
        driver.set_window_rect(0, 0, width, height).await?;
        Ok(Browser { driver, profile })
    }
}

struct Browser {
    driver: WebDriver,
    profile: PathBuf,
}

impl Browser {
    async fn close(self) {
        let _ = self.driver.quit().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }

    async fn go(&self, url: &str) -> anyhow::Result<()> {
        self.driver.goto(url).await?;
        Ok(())
    }

    async fn text(&self, id: &str) -> anyhow::Result<String> {
        Ok(self.element(id).await?.text().await?)
    }

    async fn element(&self, id: &str) -> anyhow::Result<WebElement> {
        match self.driver.find(By::Id(id)).await {
            Ok(element) => Ok(element),
            Err(error) => bail!(
                "no #{id} on {}: {error}\n{}",
                self.path().await,
                self.body().await.unwrap_or_default()
            ),
        }
    }

    async fn fill(&self, id: &str, value: &str) -> anyhow::Result<()> {
        let input = self.driver.find(By::Id(id)).await?;
        input.clear().await?;
        input.send_keys(value).await?;
        Ok(())
    }

    /// Clicks; a button posts its form, so this then waits for the next page (which may have
    /// the same path) to replace this one, and no step reads the page it just left.
    async fn click(&self, id: &str) -> anyhow::Result<()> {
        let element = self.element(id).await?;
        let posts = element.tag_name().await?.eq_ignore_ascii_case("button");
        element.click().await?;
        if posts {
            element
                .wait_until()
                .wait(WAIT, Duration::from_millis(100))
                .stale()
                .await
                .with_context(|| format!("#{id} did not lead to another page"))?;
        }
        Ok(())
    }

    async fn path(&self) -> String {
        self.driver
            .current_url()
            .await
            .map(|u| u.path().to_owned())
            .unwrap_or_default()
    }

    async fn body(&self) -> anyhow::Result<String> {
        Ok(self.driver.find(By::Tag("body")).await?.text().await?)
    }

    async fn shot(&self, name: &str) -> anyhow::Result<()> {
        let dir = screenshots();
        std::fs::create_dir_all(&dir)?;
        self.driver
            .screenshot(&dir.join(format!("{name}.png")))
            .await?;
        Ok(())
    }

    /// Waits until the page's path starts with `prefix` (a form post's redirect landed).
    async fn wait_for_path(&self, prefix: &str) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let path = self.path().await;
            if path.starts_with(prefix) {
                return Ok(path);
            }
            if Instant::now() > deadline {
                bail!(
                    "expected a page under {prefix}, still on {path}: {}",
                    self.body().await.unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Reloads `url` until its body satisfies `check`.
    async fn reload_until(
        &self,
        url: &str,
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> anyhow::Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            self.go(url).await?;
            let body = self.body().await?;
            if check(&body) {
                return Ok(body);
            }
            if Instant::now() > deadline {
                bail!("{url} never showed {what}; last page:\n{body}");
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn sign_up(&self, stack: &Stack, email: &str) -> anyhow::Result<()> {
        self.go(&stack.url("/signup")).await?;
        self.fill("email", email).await?;
        self.fill("password", "secret1").await?;
        self.click("submit").await?;
        self.wait_for_path("/").await?;
        ensure!(
            self.body().await?.contains(email),
            "the header names the signed-in user"
        );
        Ok(())
    }

    /// Lists a ticket and returns its page's path.
    async fn sell(&self, stack: &Stack, title: &str, price: &str) -> anyhow::Result<String> {
        self.go(&stack.url("/tickets/new")).await?;
        self.fill("title", title).await?;
        self.fill("price", price).await?;
        self.click("submit").await?;
        let path = self.wait_for_path("/tickets/").await?;
        ensure!(
            path != "/tickets/new",
            "the listing was refused: {}",
            self.body().await?
        );
        ensure!(self.text("ticket-title").await? == title);
        ensure!(self.text("ticket-state").await? == "Available");
        Ok(path)
    }

    /// Signs out with the header's button and waits for the signed-out home page.
    async fn sign_out(&self) -> anyhow::Result<()> {
        let button = self
            .driver
            .find(By::Css("form[action='/signout'] button"))
            .await?;
        button.click().await?;
        button
            .wait_until()
            .wait(WAIT, Duration::from_millis(100))
            .stale()
            .await
            .context("signing out did not lead to another page")?;
        ensure!(
            self.driver
                .find_all(By::Css("form[action='/signout']"))
                .await?
                .is_empty()
        );
        Ok(())
    }

    /// Whether the page has an element with this id.
    async fn has(&self, id: &str) -> anyhow::Result<bool> {
        Ok(!self.driver.find_all(By::Id(id)).await?.is_empty())
    }

    /// Buys the ticket at `ticket` and returns the order page's path.
    async fn purchase(&self, stack: &Stack, ticket: &str) -> anyhow::Result<String> {
        self.go(&stack.url(ticket)).await?;
        self.click("purchase").await?;
        self.wait_for_path("/orders/").await
    }
}

fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output/screenshots")
}

/// Whether the home page lists a ticket with this exact title.
fn home_lists(body: &str, title: &str) -> bool {
    body.lines().any(|line| {
        line.trim() == title
            || line.trim().starts_with(&format!("{title} "))
            || line.trim().starts_with(&format!("{title}\t"))
    })
}

/// Seconds shown by the countdown (`m:ss`).
fn seconds(countdown: &str) -> anyhow::Result<i64> {
    let (m, s) = countdown
        .split_once(':')
        .with_context(|| format!("countdown {countdown:?}"))?;
    Ok(m.trim().parse::<i64>()? * 60 + s.trim().parse::<i64>()?)
}

async fn buy_pay_and_decline(
    stack: &Stack,
    seller: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    // The seller signs up and lists two tickets.
    seller.go(&stack.url("/")).await?;
    seller.shot("01-home-signed-out").await?;
    seller.go(&stack.url("/signup")).await?;
    seller.shot("02-signup").await?;
    seller.sign_up(stack, "seller@example.com").await?;
    seller.go(&stack.url("/tickets/new")).await?;
    seller.shot("03-sell-form").await?;
    let concert = seller.sell(stack, "Rust Conf 2026", "25.50").await?;
    ensure!(seller.text("ticket-price").await? == "$25.50");
    seller.shot("04-ticket-seller-view").await?;
    let opera = seller.sell(stack, "Night at the Opera", "40").await?;

    // The buyer, in a browser of their own, finds the ticket and is asked to sign in first.
    let home = buyer
        .reload_until(&stack.url("/"), "both tickets", |b| {
            home_lists(b, "Rust Conf 2026") && home_lists(b, "Night at the Opera")
        })
        .await?;
    ensure!(home.contains("$25.50"));
    buyer.shot("05-home-buyer-phone").await?;
    buyer.go(&stack.url(&concert)).await?;
    ensure!(buyer.text("ticket-state").await? == "Available");
    buyer.click("purchase").await?; // "Sign in to purchase"
    ensure!(buyer.wait_for_path("/signin").await? == "/signin");
    buyer
        .driver
        .find(By::LinkText("Create an account"))
        .await?
        .click()
        .await?;
    buyer.wait_for_path("/signup").await?;
    buyer.fill("email", "buyer@example.com").await?;
    buyer.fill("password", "secret1").await?;
    buyer.click("submit").await?;
    ensure!(
        buyer.wait_for_path("/tickets/").await? == concert,
        "back on the ticket after signing up"
    );

    // Purchase: the order page counts down from the server's remaining time.
    buyer.click("purchase").await?;
    let order = buyer.wait_for_path("/orders/").await?;
    ensure!(buyer.text("status").await? == "Awaiting payment");
    let first = seconds(&buyer.text("countdown").await?)?;
    ensure!(
        (800..=900).contains(&first),
        "about 15 minutes left, got {first} s"
    );
    buyer.shot("06-order-countdown").await?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while seconds(&buyer.text("countdown").await?)? >= first {
        ensure!(Instant::now() < deadline, "the countdown does not tick");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Pay with the success card.
    buyer.click("card-success").await?;
    buyer.click("pay").await?;
    let body = buyer
        .reload_until(&stack.url(&order), "a paid order", |b| {
            b.contains("Payment received")
        })
        .await?;
    ensure!(buyer.text("status").await? == "Paid", "{body}");
    buyer.shot("07-order-paid").await?;

    // The ticket is gone from the home page and says so on its own page.
    buyer
        .reload_until(&stack.url("/"), "the sold ticket gone", |b| {
            !home_lists(b, "Rust Conf 2026")
        })
        .await?;
    ensure!(home_lists(&buyer.body().await?, "Night at the Opera"));
    buyer.shot("08-home-after-sale").await?;
    seller.go(&stack.url(&concert)).await?;
    ensure!(seller.text("ticket-state").await?.contains("not available"));

    // A declined card is refused in words and the order stays payable.
    let second = buyer.purchase(stack, &opera).await?;
    buyer.click("card-declined").await?;
    buyer.click("pay").await?;
    buyer.wait_for_path(&second).await?;
    let error = buyer.text("payment-error").await?;
    ensure!(
        error.to_lowercase().contains("declined"),
        "decline message, got {error:?}"
    );
    ensure!(buyer.text("status").await? == "Awaiting payment");
    buyer.shot("09-order-declined").await?;

    // While reserved, the seller's edit is refused with the API's message.
    seller.go(&stack.url(&format!("{opera}/edit"))).await?;
    seller.fill("price", "45").await?;
    seller.click("submit").await?;
    seller.wait_for_path(&format!("{opera}/edit")).await?;
    let refusal = seller.text("form-error").await?;
    ensure!(!refusal.is_empty(), "the API's refusal is shown");
    seller.shot("10-edit-refused-while-reserved").await?;

    // The buyer's orders, with their states.
    buyer.go(&stack.url("/orders")).await?;
    let list = buyer.body().await?;
    ensure!(
        list.contains("Paid") && list.contains("Awaiting payment"),
        "{list}"
    );
    buyer.shot("11-my-orders-phone").await?;
    Ok(())
}

/// Runs a scenario with a seller's desktop browser and a buyer's browser of the given size on
/// `stack`, closing both browsers (and so their driver sessions) whatever the outcome.
async fn two_browsers<F>(stack: Stack, buyer_size: (u32, u32), scenario: F)
where
    F: AsyncFnOnce(&Stack, &Browser, &Browser) -> anyhow::Result<()>,
{
    let chromedriver = Chromedriver::start().await;
    let seller = chromedriver
        .browser(1280, 900)
        .await
        .expect("seller's browser");
    let buyer = chromedriver
        .browser(buyer_size.0, buyer_size.1)
        .await
        .expect("buyer's browser");
    let outcome = scenario(&stack, &seller, &buyer).await;
    seller.close().await;
    buyer.close().await;
    outcome.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_pays_and_a_declined_card_is_explained() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (390, 844),
        buy_pay_and_decline,
    )
    .await;
}

async fn let_it_expire(stack: &Stack, seller: &Browser, buyer: &Browser) -> anyhow::Result<()> {
    seller.sign_up(stack, "seller2@example.com").await?;
    let ticket = seller.sell(stack, "Short Window Gig", "12").await?;
    buyer.sign_up(stack, "buyer2@example.com").await?;
    let order = buyer.purchase(stack, &ticket).await?;
    buyer.shot("12-order-short-window").await?;

    let body = buyer
        .reload_until(&stack.url(&order), "an expired order", |b| {
            b.contains("Status: Expired")
                && b.contains("This order expired; the ticket is back on sale")
        })
        .await?;
    ensure!(buyer.text("status").await? == "Expired", "{body}");
    ensure!(
        buyer.driver.find_all(By::Id("pay")).await?.is_empty(),
        "no payment form on an expired order"
    );
    buyer.shot("13-order-expired").await?;

    buyer
        .reload_until(&stack.url("/"), "the ticket back on sale", |b| {
            home_lists(b, "Short Window Gig")
        })
        .await?;
    buyer.shot("14-home-ticket-back").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unpaid_order_expires_and_the_ticket_goes_back_on_sale() {
    two_browsers(
        Stack::start(Duration::from_secs(2)).await,
        (1280, 900),
        let_it_expire,
    )
    .await;
}

async fn stripe_cannot_load(
    stack: &Stack,
    seller: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    seller.sign_up(stack, "stripe-seller@example.com").await?;
    let ticket = seller.sell(stack, "Card Element Evening", "30").await?;
    buyer.sign_up(stack, "stripe-buyer@example.com").await?;
    let order = buyer.purchase(stack, &ticket).await?;
    ensure!(order.starts_with("/orders/"), "{order}");
    // The network is closed here: js.stripe.com cannot load, and the page must say so.
    ensure!(buyer.text("status").await? == "Awaiting payment");
    ensure!(
        buyer.element("card-element").await?.is_present().await?,
        "the card element's mount is there"
    );
    let notice = buyer.element("stripe-unavailable").await?;
    ensure!(notice.is_displayed().await?, "the notice is visible");
    ensure!(
        notice
            .text()
            .await?
            .contains("The card form is loaded from Stripe and could not load"),
        "{}",
        notice.text().await?
    );
    let pay = buyer.element("pay").await?;
    ensure!(pay.is_displayed().await?, "the pay button is shown");
    ensure!(!pay.is_enabled().await?, "the pay button stays disabled");
    ensure!(
        buyer
            .driver
            .find_all(By::Id("card-success"))
            .await?
            .is_empty(),
        "no test cards with Stripe"
    );
    buyer.shot("15-order-stripe-unavailable").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_stripe_unreachable_the_order_page_explains_and_keeps_pay_disabled() {
    two_browsers(
        Stack::start_with(Duration::from_secs(900), Some("pk_test_example")).await,
        (1280, 900),
        stripe_cannot_load,
    )
    .await;
}

async fn refund_by_an_operator(
    stack: &Stack,
    desk: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    desk.sign_up(stack, "refund-seller@example.com").await?;
    let ticket = desk.sell(stack, "Refund Rehearsal", "25.99").await?;

    // The buyer pays; their own paid order offers no refund.
    buyer.sign_up(stack, "refund-buyer@example.com").await?;
    let order = buyer.purchase(stack, &ticket).await?;
    buyer.click("card-success").await?;
    buyer.click("pay").await?;
    buyer
        .reload_until(&stack.url(&order), "a paid order", |b| {
            b.contains("Payment received")
        })
        .await?;
    ensure!(buyer.text("status").await? == "Paid");
    ensure!(!buyer.has("refund").await?, "a buyer is offered no refund");

    // An operator, at the desk, opens the buyer's order: no Pay or Cancel, a Refund.
    desk.sign_out().await?;
    desk.sign_up(stack, testing::OPERATOR_EMAIL).await?;
    desk.go(&stack.url(&order)).await?;
    ensure!(
        desk.text("status").await? == "Paid",
        "{}",
        desk.body().await?
    );
    ensure!(!desk.has("pay").await? && !desk.has("cancel").await?);
    desk.shot("16-operator-paid-order").await?;
    desk.click("refund").await?;
    desk.wait_for_path(&format!("{order}/refund")).await?;
    ensure!(desk.text("question").await? == "Refund $25.99 to the buyer?");
    desk.shot("17-refund-confirmation").await?;
    desk.click("confirm-refund").await?;
    ensure!(desk.path().await == order, "back on the order");
    let body = desk
        .reload_until(
            &stack.url(&format!("{order}?refunded=1")),
            "the refund done",
            |b| b.contains("Refunded: the buyer gets $25.99 back"),
        )
        .await?;
    ensure!(desk.text("status").await? == "Refunded", "{body}");
    ensure!(!desk.has("refund").await?, "nothing left to refund");
    desk.shot("18-order-refunded-operator").await?;

    // The buyer's orders say Refunded, with nothing to pay or cancel.
    buyer.go(&stack.url("/orders")).await?;
    let list = buyer.body().await?;
    ensure!(
        list.contains("Refunded") && !list.contains("Paid"),
        "{list}"
    );
    buyer.shot("19-my-orders-refunded").await?;
    buyer.go(&stack.url(&order)).await?;
    ensure!(buyer.text("status").await? == "Refunded");
    for control in ["pay", "cancel", "refund"] {
        ensure!(
            !buyer.has(control).await?,
            "no #{control} on a refunded order"
        );
    }

    // And the ticket is on sale again.
    buyer
        .reload_until(&stack.url("/"), "the ticket back on sale", |b| {
            home_lists(b, "Refund Rehearsal")
        })
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_refunds_a_paid_order_after_confirming_and_the_buyer_sees_it_refunded() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (390, 844),
        refund_by_an_operator,
    )
    .await;
}

/// Signs in with an existing account and waits for the page `next` leads to.
async fn sign_in(browser: &Browser, stack: &Stack, email: &str) -> anyhow::Result<()> {
    browser.go(&stack.url("/signin?next=/admin")).await?;
    browser.fill("email", email).await?;
    browser.fill("password", "secret1").await?;
    browser.click("submit").await?;
    browser.wait_for_path("/admin").await?;
    Ok(())
}

async fn operate_the_console(stack: &Stack, desk: &Browser, phone: &Browser) -> anyhow::Result<()> {
    // Something to look at: a paid order whose refund the provider refuses, an expiry orders
    // cannot apply (parked), and jobs whose publish failed.
    desk.sign_up(stack, "console-seller@example.com").await?;
    let ticket = desk.sell(stack, "Console Concert", "30").await?;
    phone.sign_up(stack, "console-buyer@example.com").await?;
    let order = phone.purchase(stack, &ticket).await?;
    phone.click("card-success").await?;
    phone.click("pay").await?;
    phone
        .reload_until(&stack.url(&order), "a paid order", |b| {
            b.contains("Payment received")
        })
        .await?;
    ensure!(
        !phone.has("console-link").await?,
        "a buyer is offered no console"
    );
    phone.go(&stack.url("/admin")).await?;
    ensure!(
        phone
            .text("message")
            .await?
            .contains("The console is for operators")
    );

    desk.sign_out().await?;
    desk.sign_up(stack, testing::OPERATOR_EMAIL).await?;
    stack.provider.set_refunds_refused(true);
    desk.go(&stack.url(&format!("{order}/refund"))).await?;
    desk.click("confirm-refund").await?;
    ensure!(desk.text("payment-error").await?.contains("disputed"));
    let unknown = uuid::Uuid::now_v7();
    stack
        .publish(
            "expiration.complete",
            serde_json::json!({"orderId": unknown}),
        )
        .await;
    let failed = uuid::Uuid::now_v7();
    stack.fail_a_job(failed).await;
    let doomed = uuid::Uuid::now_v7();
    stack.fail_a_job(doomed).await;

    // The operator opens the console from the header.
    desk.go(&stack.url("/")).await?;
    desk.element("console-link").await?.click().await?;
    desk.wait_for_path("/admin").await?;
    let body = desk
        .reload_until(&stack.url("/admin"), "the parked expiry", |b| {
            b.contains(&unknown.to_string())
        })
        .await?;
    ensure!(desk.text("count-failed").await? == "2", "{body}");
    ensure!(desk.text("count-delayed").await? == "1", "{body}");
    ensure!(desk.has("lateness-empty").await?, "nothing fired yet");
    ensure!(body.contains("This charge is disputed"), "{body}");
    ensure!(body.contains("NATS said no"), "{body}");
    desk.shot("20-console").await?;

    // Replay the parked expiry: orders refuses it again, and says why.
    let parked = desk
        .driver
        .find(By::Css("#parked-orders button"))
        .await?
        .id()
        .await?
        .context("the Replay button has an id")?;
    desk.click(&parked).await?;
    desk.wait_for_path("/admin").await?;
    let notice = desk.text("notice").await?;
    ensure!(
        notice.contains("was not replayed in orders") && notice.contains("refused again"),
        "{notice}"
    );
    desk.shot("21-console-replay-refused").await?;

    // Retry a failed job, and fire it.
    desk.go(&stack.url("/admin/queues")).await?;
    desk.click(&format!("retry-{failed}")).await?;
    desk.wait_for_path("/admin/queues").await?;
    ensure!(
        desk.text("notice").await? == format!("Job {failed} will run again now."),
        "{}",
        desk.body().await?
    );
    ensure!(desk.text("count-failed").await? == "1");
    desk.shot("22-queue-retried").await?;
    stack.fire_due_jobs().await;

    // Discard the other, after confirming on a page of its own.
    desk.go(&stack.url("/admin/queues?state=failed")).await?;
    desk.click(&format!("discard-{doomed}")).await?;
    desk.wait_for_path(&format!("/admin/jobs/{doomed}/discard"))
        .await?;
    ensure!(desk.text("question").await? == format!("Discard job {doomed}?"));
    desk.shot("23-discard-confirmation").await?;
    desk.click("confirm-discard").await?;
    desk.wait_for_path("/admin/queues").await?;
    ensure!(desk.text("notice").await? == format!("Job {doomed} was discarded."));
    ensure!(desk.text("count-failed").await? == "0");
    ensure!(desk.text("count-completed").await? == "1");
    ensure!(
        desk.has("lateness-chart").await?,
        "the fired job is on the chart: {}",
        desk.body().await?
    );
    desk.shot("24-queue-after-discard").await?;

    // The actions are listed with who did them.
    desk.go(&stack.url("/admin#actions")).await?;
    let actions = desk.text("operator-actions").await?;
    for action in ["refund", "replay", "retry", "discard"] {
        ensure!(actions.contains(action), "{action} in {actions}");
    }
    desk.shot("25-console-after-actions").await?;

    // On a phone, the queue alone.
    phone.go(&stack.url("/")).await?;
    phone.sign_out().await?;
    sign_in(phone, stack, testing::OPERATOR_EMAIL).await?;
    phone.go(&stack.url("/admin/queues?state=delayed")).await?;
    ensure!(
        phone
            .has(&format!("promote-{}", order.trim_start_matches("/orders/")))
            .await?
    );
    phone.shot("26-queue-phone").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_reads_the_console_and_replays_retries_and_discards() {
    let stack = Stack::without_expiration_workers().await;
    let chromedriver = Chromedriver::start().await;
    // Tall, so each screenshot holds the whole console.
    let desk = chromedriver
        .browser(1280, 2400)
        .await
        .expect("the operator's browser");
    let phone = chromedriver.browser(390, 844).await.expect("a phone");
    let outcome = operate_the_console(&stack, &desk, &phone).await;
    desk.close().await;
    phone.close().await;
    outcome.unwrap();
}
