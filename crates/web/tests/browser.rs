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
        Chromedriver::start_in(None).await
    }

    /// chromedriver whose browsers live in the time zone `zone` (`TZ`, e.g. `Asia/Kolkata`),
    /// or the machine's.
    async fn start_in(zone: Option<&str>) -> Chromedriver {
        for path in [CHROMEDRIVER, CHROMIUM] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: the browser tests need Debian's chromium and chromium-driver; run scripts/browser-deps.sh (as root it installs them, otherwise it prints the command)"
            );
        }
        let port = testing::free_port();
        let mut command = tokio::process::Command::new(CHROMEDRIVER);
        if let Some(zone) = zone {
            command.env("TZ", zone);
        }
        let child = command
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
        Ok(Browser {
            driver,
            profile,
            size: (width, height),
        })
    }
}

struct Browser {
    driver: WebDriver,
    profile: PathBuf,
    /// The window's size as opened.
    size: (u32, u32),
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

    /// The page as it is, at a desktop's width and then a phone's (`{name}-desktop.png`,
    /// `{name}-phone.png`, the phone `phone_height` tall so a longer page fits); the window
    /// is back to its own size afterwards.
    async fn shots(&self, name: &str, phone_height: u32) -> anyhow::Result<()> {
        self.shots_at(name, 900, phone_height).await
    }

    /// [`Browser::shots`] from the top of the page, the desktop `desktop_height` tall (for a
    /// form taller than a screen).
    async fn shots_sized(
        &self,
        name: &str,
        desktop_height: u32,
        phone_height: u32,
    ) -> anyhow::Result<()> {
        self.driver
            .execute("window.scrollTo(0, 0);", Vec::new())
            .await?;
        self.shots_at(name, desktop_height, phone_height).await
    }

    async fn shots_at(
        &self,
        name: &str,
        desktop_height: u32,
        phone_height: u32,
    ) -> anyhow::Result<()> {
        self.driver
            .set_window_rect(0, 0, 1280, desktop_height)
            .await?;
        self.shot(&format!("{name}-desktop")).await?;
        self.driver.set_window_rect(0, 0, 390, phone_height).await?;
        self.shot(&format!("{name}-phone")).await?;
        let (width, height) = self.size;
        self.driver.set_window_rect(0, 0, width, height).await?;
        Ok(())
    }

    /// The HTTP status of the page shown, as the server answered it (the browser's own
    /// record of the navigation).
    async fn status(&self) -> anyhow::Result<u16> {
        let status = self
            .driver
            .execute(
                "return performance.getEntriesByType('navigation')[0].responseStatus;",
                Vec::new(),
            )
            .await?;
        status
            .json()
            .as_u64()
            .and_then(|s| u16::try_from(s).ok())
            .context("the navigation's status")
    }

    /// An attribute of the element with this id.
    async fn attr(&self, id: &str, name: &str) -> anyhow::Result<Option<String>> {
        Ok(self.element(id).await?.attr(name).await?)
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

    /// Sets an input's value as a person would leave it (a `datetime-local` takes keys in
    /// the browser's locale order, which a test should not depend on) and fires `change`.
    async fn set_value(&self, id: &str, value: &str) -> anyhow::Result<()> {
        let input = self.element(id).await?;
        self.driver
            .execute(
                "arguments[0].value = arguments[1]; \
                 arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
                vec![input.to_json()?, serde_json::json!(value)],
            )
            .await?;
        Ok(())
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
    let state = seller.text("ticket-state").await?;
    ensure!(state.starts_with("Sold"), "{state}");
    ensure!(
        !seller.has("edit").await? && !seller.has("withdraw").await?,
        "nothing to edit or withdraw on a sold ticket"
    );

    // A declined card is refused in words, back on the order's own address, and the order
    // stays payable.
    let second = buyer.purchase(stack, &opera).await?;
    buyer.click("card-declined").await?;
    buyer.click("pay").await?;
    buyer.wait_for_path(&second).await?;
    ensure!(buyer.path().await == second, "no /pay address left behind");
    let error = buyer.text("flash").await?;
    ensure!(
        error.to_lowercase().contains("declined"),
        "decline message, got {error:?}"
    );
    ensure!(buyer.text("status").await? == "Awaiting payment");
    buyer.shot("09-order-declined").await?;

    // While reserved, the seller is told the ticket cannot be edited, before typing anything.
    seller.go(&stack.url(&opera)).await?;
    ensure!(seller.text("ticket-state").await?.starts_with("Reserved"));
    ensure!(!seller.has("edit").await?, "no Edit on a reserved ticket");
    seller.go(&stack.url(&format!("{opera}/edit"))).await?;
    ensure!(seller.status().await? == 409);
    ensure!(!seller.has("price").await?, "no form to fill in");
    let refusal = seller.text("message").await?;
    ensure!(refusal.contains("paying for it right now"), "{refusal}");
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

/// Whether the `<time>` inside the element with this id was rewritten in the browser's zone:
/// its text no longer says UTC, and its tooltip keeps the UTC time.
async fn localised(browser: &Browser, id: &str, zone_label: &str) -> anyhow::Result<String> {
    let time = browser
        .element(id)
        .await?
        .find(By::Tag("time"))
        .await
        .with_context(|| format!("a <time> in #{id}"))?;
    let text = time.text().await?;
    let title = time.attr("title").await?.unwrap_or_default();
    let datetime = time.attr("datetime").await?.unwrap_or_default();
    ensure!(datetime.ends_with('Z'), "datetime in UTC: {datetime:?}");
    ensure!(
        title.ends_with(" UTC"),
        "the UTC time as the tooltip: {title:?}"
    );
    ensure!(
        !text.contains("UTC") && text.contains(zone_label),
        "#{id} in the visitor's zone ({zone_label}): {text:?}"
    );
    Ok(text)
}

async fn receipt_cancel_and_local_times(
    stack: &Stack,
    seller: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    // Listing says so on the ticket's page; the price as typed by a person.
    seller.sign_up(stack, "receipt-seller@example.com").await?;
    seller.go(&stack.url("/tickets/new")).await?;
    seller.fill("title", "Receipt Recital").await?;
    seller.fill("price", "$25,50").await?;
    seller.click("submit").await?;
    let recital = seller.wait_for_path("/tickets/").await?;
    ensure!(recital != "/tickets/new", "{}", seller.body().await?);
    ensure!(seller.text("flash").await? == "Listed. Your ticket is on sale.");
    ensure!(seller.text("ticket-price").await? == "$25.50");
    seller.shots("27-flash-listed", 844).await?;
    let encore = seller.sell(stack, "Encore Evening", "18").await?;

    // A new account is welcomed on the page it lands on.
    buyer.go(&stack.url("/signup")).await?;
    buyer.fill("email", "receipt-buyer@example.com").await?;
    buyer.fill("password", "secret1").await?;
    buyer.click("submit").await?;
    buyer.wait_for_path("/").await?;
    ensure!(buyer.text("flash").await?.starts_with("Welcome"));
    buyer.shots("28-flash-welcome", 844).await?;
    buyer.go(&stack.url("/")).await?;
    ensure!(!buyer.has("flash").await?, "said once");

    // The order's deadline in the buyer's own time zone.
    let order = buyer.purchase(stack, &recital).await?;
    let until = localised(buyer, "live", "GMT+5:30").await?;
    ensure!(until.contains(':'), "{until}");

    // Cancel asks first, on a page of its own; keeping the order changes nothing.
    buyer.click("cancel").await?;
    buyer.wait_for_path(&format!("{order}/cancel")).await?;
    ensure!(buyer.text("question").await? == "Cancel your order for Receipt Recital?");
    buyer.shots("29-cancel-confirmation", 844).await?;
    buyer.element("keep").await?.click().await?;
    buyer.wait_for_path(&order).await?;
    ensure!(buyer.path().await == order);
    ensure!(buyer.text("status").await? == "Awaiting payment");

    // Declined, then paid: each back on the order's page, with its message on top.
    buyer.click("card-declined").await?;
    buyer.click("pay").await?;
    buyer.wait_for_path(&order).await?;
    ensure!(buyer.path().await == order);
    ensure!(buyer.text("flash").await?.contains("declined"));
    buyer.shots("30-order-declined-message", 1100).await?;
    buyer.click("card-success").await?;
    buyer.click("pay").await?;
    buyer.wait_for_path(&order).await?;
    ensure!(buyer.text("flash").await? == "Paid. Thank you!");
    let body = buyer
        .reload_until(&stack.url(&order), "the receipt", |b| b.contains("Paid on"))
        .await?;
    ensure!(buyer.text("status").await? == "Paid", "{body}");
    ensure!(buyer.text("receipt-order").await? == order.trim_start_matches("/orders/"));
    ensure!(buyer.text("receipt-ticket").await? == "Receipt Recital");
    ensure!(buyer.text("receipt-amount").await? == "$25.50");
    ensure!(buyer.text("receipt-card").await? == "Visa ending in 4242");
    localised(buyer, "receipt-when", "GMT+5:30").await?;
    buyer.shots("31-order-receipt", 1100).await?;

    // Cancelling for real, after the question.
    let second = buyer.purchase(stack, &encore).await?;
    buyer.click("cancel").await?;
    buyer.wait_for_path(&format!("{second}/cancel")).await?;
    buyer.click("confirm-cancel").await?;
    buyer.wait_for_path(&second).await?;
    ensure!(buyer.path().await == second);
    ensure!(buyer.text("flash").await? == "Cancelled. The ticket is back on sale.");
    ensure!(buyer.text("status").await? == "Cancelled");
    ensure!(!buyer.has("pay").await?);
    buyer.shots("32-order-cancelled", 844).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_buyer_cancels_after_confirming_pays_and_reads_the_receipt_in_their_own_time_zone() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    // India: +05:30 all year, so the zone's label is known.
    let chromedriver = Chromedriver::start_in(Some("Asia/Kolkata")).await;
    let seller = chromedriver.browser(1280, 900).await.expect("seller");
    let buyer = chromedriver.browser(1280, 900).await.expect("buyer");
    let outcome = receipt_cancel_and_local_times(&stack, &seller, &buyer).await;
    seller.close().await;
    buyer.close().await;
    outcome.unwrap();
}

async fn hold_warning(stack: &Stack, seller: &Browser, buyer: &Browser) -> anyhow::Result<()> {
    seller.sign_up(stack, "warn-seller@example.com").await?;
    let ticket = seller.sell(stack, "Last Minute Show", "9").await?;
    buyer.sign_up(stack, "warn-buyer@example.com").await?;
    let order = buyer.purchase(stack, &ticket).await?;
    let first = seconds(&buyer.text("countdown").await?)?;
    ensure!(first > 60, "more than a minute left at first: {first}");
    let warning = buyer.element("hold-warning").await?;
    ensure!(!warning.is_displayed().await?, "no warning yet");
    // The countdown reaches its last minute within seconds: the warning shows.
    warning
        .wait_until()
        .wait(WAIT, Duration::from_millis(200))
        .displayed()
        .await
        .context("the warning never showed")?;
    let left = seconds(&buyer.text("countdown").await?)?;
    ensure!(left <= 60, "warned with {left} s left");
    ensure!(
        buyer
            .attr("live", "class")
            .await?
            .is_some_and(|c| c.contains("ending")),
        "the countdown turns red"
    );
    ensure!(warning.text().await?.starts_with("Less than a minute left"));
    ensure!(buyer.path().await == order);
    buyer.shots("33-order-hold-warning", 1100).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_countdown_warns_a_minute_before_the_hold_ends() {
    two_browsers(
        Stack::start(Duration::from_secs(66)).await,
        (1280, 900),
        hold_warning,
    )
    .await;
}

async fn error_pages(stack: &Stack, visitor: &Browser, other: &Browser) -> anyhow::Result<()> {
    // Unknown addresses, signed out and signed in: the 404 page in the layout.
    visitor.go(&stack.url("/no/such/page")).await?;
    ensure!(visitor.status().await? == 404);
    ensure!(
        visitor
            .text("message")
            .await?
            .contains("no page at this address")
    );
    visitor.shots("34-404-signed-out", 844).await?;
    visitor.sign_up(stack, "errors@example.com").await?;
    visitor.go(&stack.url("/no/such/page")).await?;
    ensure!(visitor.status().await? == 404);
    ensure!(
        visitor.body().await?.contains("errors@example.com"),
        "the visitor's own header"
    );
    ensure!(visitor.has("listings-link").await?);
    visitor.shots("35-404-signed-in", 844).await?;
    visitor.go(&stack.url("/tickets/not-a-ticket-id")).await?;
    ensure!(visitor.status().await? == 404);
    ensure!(visitor.text("message").await?.contains("not one of ours"));
    visitor.shots("36-malformed-id", 844).await?;

    // Someone else's order: 403, saying how to see it if it is yours.
    let ticket = visitor.sell(stack, "Private Party", "20").await?;
    other.sign_up(stack, "errors-buyer@example.com").await?;
    let order = other.purchase(stack, &ticket).await?;
    visitor.go(&stack.url(&order)).await?;
    ensure!(visitor.status().await? == 403);
    ensure!(visitor.text("message").await?.contains("another account"));
    ensure!(visitor.body().await?.contains("errors@example.com"));
    visitor.shots("37-not-yours", 844).await?;

    // A backend failing: 502 in the layout, the header still the visitor's.
    stack.break_table(stack.orders_db(), "orders").await;
    other.go(&stack.url(&order)).await?;
    ensure!(other.status().await? == 502);
    ensure!(other.body().await?.contains("errors-buyer@example.com"));
    ensure!(other.body().await?.contains("Please try again"));
    other.shots("38-backend-failed", 844).await?;

    // The API keeps its JSON, whatever the browser asks for.
    visitor.go(&stack.url("/api/no-such-route")).await?;
    ensure!(visitor.status().await? == 404);
    let body = visitor.body().await?;
    ensure!(body.contains("\"errors\""), "{body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_pages_in_the_layout_with_the_visitors_header_and_their_status() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (1280, 900),
        error_pages,
    )
    .await;
}

/// Clicks the link whose `href` is `href` and waits for the page it leads to.
async fn follow(browser: &Browser, href: &str) -> anyhow::Result<()> {
    let here = browser.path().await;
    browser
        .driver
        .find(By::Css(format!("a[href='{href}']")))
        .await
        .with_context(|| format!("a link to {href} on {here}"))?
        .click()
        .await?;
    browser
        .wait_for_path(href.split('?').next().unwrap_or(href))
        .await?;
    Ok(())
}

async fn listings_and_withdrawing(
    stack: &Stack,
    seller: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    seller.sign_up(stack, "listings-seller@example.com").await?;
    seller.element("listings-link").await?.click().await?;
    seller.wait_for_path("/listings").await?;
    ensure!(
        seller
            .body()
            .await?
            .contains("You have not listed any tickets yet")
    );
    seller.shots("39-listings-empty", 844).await?;
    let jazz = seller.sell(stack, "Jazz Night", "30").await?;
    let comedy = seller.sell(stack, "Comedy Club", "15").await?;
    let opera = seller.sell(stack, "Opera Gala", "45").await?;

    // A buyer holds one and buys another.
    buyer.sign_up(stack, "listings-buyer@example.com").await?;
    buyer.purchase(stack, &comedy).await?;
    buyer.purchase(stack, &opera).await?;
    buyer.click("card-success").await?;
    buyer.click("pay").await?;
    buyer
        .reload_until(&stack.url(&opera), "the ticket sold to the buyer", |b| {
            b.contains("Sold to you")
        })
        .await?;

    // The seller's listings: each in its state, Edit and Withdraw on the available one.
    let id = |t: &str| t.trim_start_matches("/tickets/").to_owned();
    let body = seller
        .reload_until(&stack.url("/listings"), "the hold and the sale", |b| {
            b.contains("Reserved") && b.contains("Sold")
        })
        .await?;
    ensure!(
        seller.text(&format!("status-{}", id(&jazz))).await? == "Available",
        "{body}"
    );
    ensure!(seller.text(&format!("status-{}", id(&comedy))).await? == "Reserved");
    ensure!(seller.text(&format!("status-{}", id(&opera))).await? == "Sold");
    let edits = seller.driver.find_all(By::Css("a[href$='/edit']")).await?;
    ensure!(edits.len() == 1, "Edit on the available ticket only");
    seller.shots("40-listings", 844).await?;

    // The ticket pages say which state each is in; no Edit on a taken ticket.
    seller.go(&stack.url(&comedy)).await?;
    ensure!(seller.text("ticket-state").await?.starts_with("Reserved"));
    ensure!(!seller.has("edit").await? && !seller.has("withdraw").await?);
    seller.shots("41-ticket-reserved-seller", 844).await?;
    buyer.go(&stack.url("/")).await?;
    buyer.sign_out().await?;
    buyer.go(&stack.url(&opera)).await?;
    ensure!(buyer.text("ticket-state").await?.starts_with("Sold"));
    ensure!(!buyer.has("purchase").await?);
    buyer.shots("42-ticket-sold", 844).await?;
    seller.go(&stack.url(&format!("{comedy}/edit"))).await?;
    ensure!(seller.status().await? == 409);
    ensure!(
        seller
            .text("message")
            .await?
            .contains("paying for it right now")
    );
    seller.shots("43-edit-not-available", 844).await?;

    // Editing the available one, with a price typed the European way: "Saved."
    seller.go(&stack.url("/listings")).await?;
    follow(seller, &format!("{jazz}/edit")).await?;
    seller.fill("price", " 32,5 ").await?;
    seller.click("submit").await?;
    seller.wait_for_path(&jazz).await?;
    ensure!(seller.path().await == jazz);
    ensure!(seller.text("flash").await? == "Saved.");
    ensure!(seller.text("ticket-price").await? == "$32.50");
    seller.shots("44-flash-saved", 844).await?;

    // Withdrawing asks first, then the listings say it is done.
    seller.go(&stack.url("/listings")).await?;
    follow(seller, &format!("{jazz}/withdraw")).await?;
    ensure!(seller.text("question").await? == "Withdraw Jazz Night?");
    seller.shots("45-withdraw-confirmation", 844).await?;
    seller.click("confirm-withdraw").await?;
    seller.wait_for_path("/listings").await?;
    ensure!(seller.text("flash").await? == "Withdrawn. The ticket is no longer on sale.");
    ensure!(!seller.has(&format!("status-{}", id(&jazz))).await?);
    seller.shots("46-listings-withdrawn", 844).await?;
    buyer.go(&stack.url(&jazz)).await?;
    ensure!(
        buyer.status().await? == 404,
        "a withdrawn ticket's page is gone"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seller_reads_their_listings_edits_one_and_withdraws_it_after_confirming() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (390, 844),
        listings_and_withdrawing,
    )
    .await;
}

async fn paging_back_and_prices(
    stack: &Stack,
    seller: &Browser,
    visitor: &Browser,
) -> anyhow::Result<()> {
    // Enough tickets for two pages, listed through the API.
    let api = support::client();
    let signup = api
        .post(stack.url("/api/users/signup"))
        .json(&serde_json::json!({"email": "many-seller@example.com", "password": "secret1"}))
        .send()
        .await?;
    ensure!(signup.status().is_success());
    for i in 1..=25 {
        let listed = api
            .post(stack.url("/api/tickets"))
            .json(&serde_json::json!({"title": format!("Matinee {i:02}"), "price": 12}))
            .send()
            .await?;
        ensure!(listed.status().is_success());
    }

    // On to the older page, and back to the newer one.
    visitor.go(&stack.url("/")).await?;
    ensure!(!visitor.has("previous-page").await?);
    visitor.element("next-page").await?.click().await?;
    visitor.wait_for_path("/").await?;
    let body = visitor
        .reload_until(
            visitor.driver.current_url().await?.as_ref(),
            "the older page",
            |b| b.contains("Matinee 05") && !b.contains("Matinee 06"),
        )
        .await?;
    ensure!(body.contains("Matinee 01"), "{body}");
    ensure!(visitor.has("previous-page").await?);
    visitor.shots("47-home-older-page", 844).await?;
    visitor.element("previous-page").await?.click().await?;
    visitor.wait_for_path("/").await?;
    let body = visitor.body().await?;
    ensure!(
        body.contains("Matinee 25") && body.contains("Matinee 06"),
        "{body}"
    );
    ensure!(!body.contains("Matinee 05"), "{body}");

    // A price that is not a number: the form again, saying how to write one.
    seller.sign_up(stack, "typo-seller@example.com").await?;
    seller.go(&stack.url("/tickets/new")).await?;
    seller.fill("title", "Typo Tour").await?;
    seller.fill("price", "twenty dollars").await?;
    seller.click("submit").await?;
    seller.wait_for_path("/tickets/new").await?;
    ensure!(seller.status().await? == 400);
    ensure!(
        seller
            .text("price-error")
            .await?
            .starts_with("Enter the price as a number")
    );
    ensure!(seller.element("price").await?.value().await?.as_deref() == Some("twenty dollars"));
    seller.shots("48-sell-price-not-a-number", 844).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ticket_list_goes_back_a_page_and_the_sell_form_explains_a_price_that_is_not_one() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (1280, 900),
        paging_back_and_prices,
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// Events with many seats.

/// A moment `days` days from now at 20:00 in India (UTC+5:30 all year): the wall-clock
/// value typed into the form there, and the UTC moment it is.
fn evening_in_india(days: i64) -> (String, time::OffsetDateTime) {
    let date = (time::OffsetDateTime::now_utc() + time::Duration::days(days)).date();
    let typed = format!(
        "{}-{:02}-{:02}T20:00",
        date.year(),
        u8::from(date.month()),
        date.day()
    );
    let utc = date
        .with_time(time::macros::time!(20:00))
        .assume_offset(time::macros::offset!(+5:30))
        .to_offset(time::UtcOffset::UTC);
    (typed, utc)
}

/// Creates an event through the API as a fresh organiser; returns its page's path.
async fn api_event(stack: &Stack, email: &str, body: serde_json::Value) -> anyhow::Result<String> {
    let api = support::client();
    let signup = api
        .post(stack.url("/api/users/signup"))
        .json(&serde_json::json!({"email": email, "password": "secret1"}))
        .send()
        .await?;
    ensure!(signup.status().is_success());
    let created = api
        .post(stack.url("/api/events"))
        .json(&body)
        .send()
        .await?;
    ensure!(created.status().is_success(), "{}", created.text().await?);
    let event: serde_json::Value = created.json().await?;
    Ok(format!(
        "/events/{}",
        event["id"].as_str().context("an id")?
    ))
}

async fn organise_an_event(
    stack: &Stack,
    organiser: &Browser,
    buyer: &Browser,
) -> anyhow::Result<()> {
    organiser.sign_up(stack, "organiser@example.com").await?;
    organiser.element("my-events-link").await?.click().await?;
    organiser.wait_for_path("/events/mine").await?;
    ensure!(
        organiser
            .text("empty")
            .await?
            .contains("You have not created any events yet")
    );
    organiser.element("create-event").await?.click().await?;
    organiser.wait_for_path("/events/new").await?;
    // The script says whose time the form takes (ICU may name India's zone by its older
    // name).
    let note = organiser.text("zone-note").await?;
    ensure!(
        [
            "In your time zone (Asia/Kolkata).",
            "In your time zone (Asia/Calcutta)."
        ]
        .contains(&note.as_str()),
        "{note}"
    );

    // A field the API refuses: the form again, the message under it, everything kept.
    let (typed, utc) = evening_in_india(45);
    organiser.fill("title", "Lantern Festival Concert").await?;
    organiser.fill("venue", "Riverside Amphitheatre").await?;
    organiser.set_value("starts-at", &typed).await?;
    organiser
        .fill(
            "description",
            "Lanterns at dusk.\nBring a blanket: <b>it gets cold</b>.",
        )
        .await?;
    organiser.fill("price", "$18,50").await?;
    organiser.fill("seats", "0").await?;
    organiser.shots_sized("49-event-form", 1300, 1300).await?;
    organiser.click("submit").await?;
    organiser.wait_for_path("/events/new").await?;
    ensure!(organiser.status().await? == 400);
    let error = organiser.text("seats-error").await?;
    ensure!(error.contains("whole number from 1 to 100000"), "{error}");
    ensure!(organiser.element("seats").await?.value().await?.as_deref() == Some("0"));
    ensure!(
        organiser
            .element("starts-at")
            .await?
            .value()
            .await?
            .as_deref()
            == Some(typed.as_str()),
        "the time as typed, still in the organiser's zone"
    );
    ensure!(organiser.element("price").await?.value().await?.as_deref() == Some("$18,50"));
    organiser
        .shots_sized("50-event-form-field-error", 1350, 1350)
        .await?;

    // Created: the event's page, its start in the organiser's zone, written in UTC.
    organiser.fill("seats", "120").await?;
    organiser.click("submit").await?;
    let event = organiser.wait_for_path("/events/").await?;
    ensure!(event != "/events/new", "{}", organiser.body().await?);
    ensure!(organiser.text("flash").await? == "Event created. Its seats are on sale.");
    let when = localised(organiser, "event-when", "GMT+5:30").await?;
    ensure!(when.contains("8:00"), "{when}");
    let datetime = organiser
        .element("event-when")
        .await?
        .find(By::Tag("time"))
        .await?
        .attr("datetime")
        .await?;
    ensure!(
        datetime.as_deref()
            == Some(
                utc.format(&time::format_description::well_known::Rfc3339)?
                    .as_str()
            ),
        "{datetime:?} for {typed} in India"
    );
    ensure!(organiser.text("event-price").await? == "$18.50");
    ensure!(organiser.text("seats-left").await? == "120 of 120 left");
    ensure!(
        organiser.text("event-description").await?
            == "Lanterns at dusk.\nBring a blanket: <b>it gets cold</b>.",
        "{}",
        organiser.text("event-description").await?
    );
    organiser.shots("51-event-created", 1000).await?;

    // Editing: the form shows the start in the organiser's zone again.
    organiser.click("edit").await?;
    organiser.wait_for_path(&format!("{event}/edit")).await?;
    ensure!(
        organiser
            .element("starts-at")
            .await?
            .value()
            .await?
            .as_deref()
            == Some(typed.as_str()),
        "the UTC start shown as the organiser typed it"
    );
    ensure!(organiser.has("fixed").await? && !organiser.has("price").await?);
    organiser.fill("title", "Lantern Festival Gala").await?;
    organiser
        .shots_sized("52-event-edit-form", 1200, 1250)
        .await?;
    organiser.click("submit").await?;
    organiser.wait_for_path(&event).await?;
    ensure!(organiser.path().await == event);
    ensure!(organiser.text("flash").await? == "Saved.");
    ensure!(organiser.text("event-title").await? == "Lantern Festival Gala");
    localised(organiser, "event-when", "GMT+5:30").await?;
    ensure!(
        organiser
            .element("event-when")
            .await?
            .find(By::Tag("time"))
            .await?
            .attr("datetime")
            .await?
            == datetime,
        "saving kept the start"
    );

    // A buyer takes a seat; the organiser's events say so.
    buyer.sign_up(stack, "festival-goer@example.com").await?;
    buyer.go(&stack.url(&event)).await?;
    buyer.click("buy").await?;
    buyer.wait_for_path("/orders/").await?;
    ensure!(buyer.text("seat").await? == "Seat 1");
    let id = event.trim_start_matches("/events/");
    organiser.go(&stack.url("/")).await?;
    organiser.element("my-events-link").await?.click().await?;
    organiser.wait_for_path("/events/mine").await?;
    let body = organiser
        .reload_until(&stack.url("/events/mine"), "the seat sold", |b| {
            b.contains("1 of 120 sold")
        })
        .await?;
    ensure!(
        organiser.text(&format!("sold-{id}")).await? == "1 of 120 sold",
        "{body}"
    );
    ensure!(body.contains("Lantern Festival Gala") && body.contains("On sale"));
    localised(organiser, "my-events", "GMT+5:30").await?;
    organiser.shots("53-my-events", 844).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organiser_creates_an_event_in_their_own_time_zone_fixes_a_field_edits_it_and_reads_their_events()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    // India: +05:30 all year, so the zone's label is known.
    let chromedriver = Chromedriver::start_in(Some("Asia/Kolkata")).await;
    let organiser = chromedriver.browser(1280, 900).await.expect("organiser");
    let buyer = chromedriver.browser(390, 844).await.expect("buyer");
    let outcome = organise_an_event(&stack, &organiser, &buyer).await;
    organiser.close().await;
    buyer.close().await;
    outcome.unwrap();
}

async fn find_and_buy_a_seat(
    stack: &Stack,
    other: &Browser,
    visitor: &Browser,
) -> anyhow::Result<()> {
    let start = |days: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(days))
            .replace_time(time::macros::time!(19:30))
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    let organiser = "jazz-organiser@example.com";
    let jazz = api_event(
        stack,
        organiser,
        serde_json::json!({"title": "Jazz at the Lighthouse", "venue": "Lighthouse Café",
            "startsAt": start(9), "price": 22, "seats": 2, "maxPerBuyer": 1,
            "description": "Two sets.\nThe bar opens at 19:00."}),
    )
    .await?;
    for (i, (title, venue)) in [
        ("Symphony No. 9", "Concert Hall"),
        ("Stand-up Comedy Night", "The Basement"),
        ("Chamber Jazz Trio", "Old Library"),
        ("Puppet Theatre", "Town Square"),
    ]
    .into_iter()
    .enumerate()
    {
        let body = serde_json::json!({"title": title, "venue": venue,
            "startsAt": start(3 + 2 * i as i64), "price": 15, "seats": 100});
        api_event(stack, &format!("organiser-{i}@example.com"), body).await?;
    }

    // Anyone finds the events from the header, soonest first, and searches them.
    visitor.go(&stack.url("/")).await?;
    visitor.element("events-link").await?.click().await?;
    visitor.wait_for_path("/events").await?;
    let body = visitor.body().await?;
    ensure!(body.contains("Symphony No. 9") && body.contains("Jazz at the Lighthouse"));
    ensure!(
        body.find("Symphony No. 9") < body.find("Jazz at the Lighthouse"),
        "{body}"
    );
    ensure!(
        body.contains("2 seats left") && body.contains("Lighthouse Café"),
        "{body}"
    );
    visitor.shots("54-events", 1000).await?;
    visitor.fill("q", "jazz").await?;
    visitor.click("search").await?;
    visitor.wait_for_path("/events").await?;
    let titles: Vec<String> = {
        let mut titles = Vec::new();
        for link in visitor
            .driver
            .find_all(By::Css("#events .ticket-title"))
            .await?
        {
            titles.push(link.text().await?);
        }
        titles
    };
    ensure!(
        titles == ["Chamber Jazz Trio", "Jazz at the Lighthouse"],
        "{titles:?}"
    );
    ensure!(
        visitor
            .text("search-summary")
            .await?
            .contains("matching “jazz”")
    );
    ensure!(visitor.element("q").await?.value().await?.as_deref() == Some("jazz"));
    visitor.shots("55-events-search", 844).await?;

    // The event's page: signed out, the way to buy is to sign in first.
    follow(visitor, &jazz).await?;
    ensure!(visitor.text("event-venue").await? == "Lighthouse Café");
    ensure!(visitor.text("seats-left").await? == "2 of 2 left");
    ensure!(visitor.text("event-description").await? == "Two sets.\nThe bar opens at 19:00.");
    ensure!(visitor.text("buy").await? == "Sign in to buy");
    visitor.shots("56-event-signed-out", 1000).await?;
    visitor.click("buy").await?;
    visitor.wait_for_path("/signin").await?;
    visitor
        .driver
        .find(By::LinkText("Create an account"))
        .await?
        .click()
        .await?;
    visitor.wait_for_path("/signup").await?;
    visitor.fill("email", "seat-buyer@example.com").await?;
    visitor.fill("password", "secret1").await?;
    visitor.click("submit").await?;
    ensure!(
        visitor.wait_for_path("/events/").await? == jazz,
        "back on the event after signing up"
    );

    // Buying: the order's page names the seat, and paying keeps it.
    ensure!(visitor.text("buy").await?.starts_with("Buy a seat"));
    visitor.click("buy").await?;
    let order = visitor.wait_for_path("/orders/").await?;
    ensure!(
        visitor.text("flash").await?
            == "Your seat is held. Pay before the time runs out to keep it."
    );
    ensure!(visitor.text("seat").await? == "Seat 1");
    ensure!(visitor.text("status").await? == "Awaiting payment");
    visitor.shots("57-order-seat", 1100).await?;
    visitor.click("card-success").await?;
    visitor.click("pay").await?;
    visitor
        .reload_until(&stack.url(&order), "the receipt", |b| b.contains("Paid on"))
        .await?;
    ensure!(visitor.text("receipt-seat").await? == "1");

    // My orders: the seat, and the way back to the event.
    visitor.go(&stack.url("/orders")).await?;
    let id = order.trim_start_matches("/orders/");
    ensure!(visitor.text(&format!("seat-{id}")).await? == "Seat 1");
    visitor.shots("58-my-orders-seat", 844).await?;
    follow(visitor, &jazz).await?;
    ensure!(
        visitor.text("my-seats").await?.contains("Seat 1 Paid"),
        "{}",
        visitor.text("my-seats").await?
    );
    ensure!(
        visitor.text("event-state").await?
            == "You hold 1 seat of this event, the most one buyer may have."
    );
    ensure!(!visitor.has("buy").await?);
    visitor.shots("59-event-your-seat", 1000).await?;

    // Someone else takes the last seat: sold out, for everyone.
    other.sign_up(stack, "late-buyer@example.com").await?;
    other.go(&stack.url(&jazz)).await?;
    other.click("buy").await?;
    other.wait_for_path("/orders/").await?;
    ensure!(other.text("seat").await? == "Seat 2");
    let body = other
        .reload_until(&stack.url(&jazz), "sold out", |b| {
            b.contains("Sold out: every seat")
        })
        .await?;
    ensure!(!other.has("buy").await?, "{body}");
    other.shots("60-event-sold-out", 1000).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visitor_searches_the_events_buys_a_seat_and_finds_it_on_the_order_and_in_my_orders() {
    two_browsers(
        Stack::start(Duration::from_secs(900)).await,
        (390, 844),
        find_and_buy_a_seat,
    )
    .await;
}
