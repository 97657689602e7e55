//! The pages over plain HTTP against the whole platform in this process: redirects to
//! sign-in, the CSRF guard, the API's errors next to the right fields, operators' refunds,
//! and the operators' console.

mod support;

use std::time::Duration;

use reqwest::{StatusCode, header};
use support::{Stack, client};
use ticketing_common::testing::OPERATOR_EMAIL;
use ticketing_expiration::worker::now_ms;
use uuid::Uuid;

async fn signed_up(stack: &Stack, email: &str) -> reqwest::Client {
    let browser = client();
    let response = browser
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", email), ("password", "secret1"), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        response.headers().get(header::SET_COOKIE).is_some(),
        "session cookie handed on"
    );
    browser
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_sign_in_and_back() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = client();
    for path in [
        "/tickets/new",
        "/orders",
        "/orders/0190a0a0-0000-7000-8000-000000000000",
    ] {
        let response = browser.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        let location = response.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            location.starts_with("/signin?next=/"),
            "{path} -> {location}"
        );
    }

    // Signing in sends the visitor to `next`, a path on this site only.
    signed_up(&stack, "back@example.com").await;
    let browser = client();
    let response = browser
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "back@example.com"),
            ("password", "secret1"),
            ("next", "/orders"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/orders");
    let page = browser.get(stack.url("/orders")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("No orders yet"));

    let response = client()
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "back@example.com"),
            ("password", "secret1"),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn a_cross_origin_form_post_is_refused_and_changes_nothing() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = signed_up(&stack, "csrf@example.com").await;

    let forged = browser
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        forged
            .text()
            .await
            .unwrap()
            .contains("sent from another site")
    );

    let no_origin = browser
        .post(stack.url("/tickets/new"))
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(no_origin.status(), StatusCode::FORBIDDEN);

    // The same host over another scheme is another origin: an http page cannot post to an
    // https site, nor the other way round.
    let other_scheme = browser
        .post(stack.url("/tickets/new"))
        .header(
            header::ORIGIN,
            stack.origin().replace("http://", "https://"),
        )
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(other_scheme.status(), StatusCode::FORBIDDEN);

    let forged_signup = client()
        .post(stack.url("/signup"))
        .header(header::REFERER, "https://evil.example/page")
        .form(&[("email", "victim@example.com"), ("password", "secret1")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged_signup.status(), StatusCode::FORBIDDEN);
    assert!(forged_signup.headers().get(header::SET_COOKIE).is_none());

    let home = browser
        .get(stack.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!home.contains("Forged"), "nothing was listed");

    // The same post from our own page goes through.
    let ours = browser
        .post(stack.url("/tickets/new"))
        .header(header::REFERER, stack.url("/tickets/new"))
        .form(&[("title", "Genuine"), ("price", "10")])
        .send()
        .await
        .unwrap();
    assert_eq!(ours.status(), StatusCode::SEE_OTHER);
}

/// The text of the element `<p class="error" id="{id}">…</p>`, if there is one.
fn error_text(html: &str, id: &str) -> Option<String> {
    let start = html.find(&format!("id=\"{id}\">"))? + id.len() + 6;
    let end = html[start..].find("</p>")? + start;
    Some(html[start..end].to_owned())
}

#[tokio::test]
async fn api_errors_are_shown_next_to_their_fields() {
    let stack = Stack::start(Duration::from_secs(900)).await;

    // Sign-up: a bad e-mail and a short password, each next to its own input.
    let response = client()
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "not-an-email"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    let html = response.text().await.unwrap();
    assert!(
        error_text(&html, "email-error").is_some_and(|m| !m.is_empty()),
        "{html}"
    );
    assert!(
        error_text(&html, "password-error").is_some_and(|m| !m.is_empty()),
        "{html}"
    );
    assert!(
        html.contains("value=\"not-an-email\""),
        "the e-mail is kept"
    );

    // A registered e-mail is refused in words.
    signed_up(&stack, "taken@example.com").await;
    let response = client()
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "taken@example.com"), ("password", "secret1")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CONFLICT);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("class=\"alert\"") || error_text(&html, "email-error").is_some(),
        "{html}"
    );

    // Sign-in with a wrong password: one message, no session.
    let response = client()
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("email", "taken@example.com"), ("password", "wrong-one")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert!(response.text().await.unwrap().contains("role=\"alert\""));

    // Selling: empty title and a negative price.
    let seller = signed_up(&stack, "seller@example.com").await;
    let response = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "   "), ("price", "-5")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let html = response.text().await.unwrap();
    assert!(error_text(&html, "title-error").is_some(), "{html}");
    assert!(error_text(&html, "price-error").is_some(), "{html}");
    assert!(html.contains("value=\"-5\""), "the typed price is kept");
}

#[tokio::test]
async fn the_home_page_pages_through_tickets_and_has_an_empty_state() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let home = client().get(stack.url("/")).send().await.unwrap();
    assert_eq!(home.status(), StatusCode::OK);
    assert!(
        home.text()
            .await
            .unwrap()
            .contains("No tickets on sale right now")
    );

    let seller = signed_up(&stack, "many@example.com").await;
    for i in 0..21 {
        let listed = seller
            .post(stack.url("/api/tickets"))
            .json(&serde_json::json!({"title": format!("Show number {i:02}"), "price": 10}))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::CREATED);
    }
    let first = client()
        .get(stack.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(first.matches("class=\"ticket-row\"").count(), 20);
    assert!(first.contains("Show number 20"), "newest first");
    let start = first.find("href=\"/?before=").expect("a next-page link") + 6;
    let end = first[start..].find('"').unwrap() + start;
    let second = client()
        .get(stack.url(&first[start..end]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(second.matches("class=\"ticket-row\"").count(), 1);
    assert!(second.contains("Show number 00"));
    assert!(!second.contains("?before="), "no further page");
}

/// Lists a ticket as `seller` and buys it as a fresh buyer; returns the buyer, the order
/// page's path and its HTML.
async fn an_order_page(
    stack: &Stack,
    seller: &str,
    buyer: &str,
) -> (reqwest::Client, String, String) {
    let seller = signed_up(stack, seller).await;
    let listed = seller
        .post(stack.url("/api/tickets"))
        .json(&serde_json::json!({"title": "Card Form Night", "price": 15}))
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::CREATED);
    let ticket: serde_json::Value = listed.json().await.unwrap();
    let ticket_id = ticket["id"].as_str().expect("ticket id");
    let buyer = signed_up(stack, buyer).await;
    let purchased = buyer
        .post(stack.url(&format!("/tickets/{ticket_id}/purchase")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(purchased.status(), StatusCode::SEE_OTHER);
    let order = purchased.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(order.starts_with("/orders/"), "{order}");
    let page = buyer.get(stack.url(&order)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    (buyer, order, html)
}

#[tokio::test]
async fn the_order_page_offers_stripes_card_element_or_the_test_cards() {
    let stack = Stack::start_with(Duration::from_secs(900), Some("pk_test_example")).await;
    let (_, _, html) = an_order_page(
        &stack,
        "stripe-seller@example.com",
        "stripe-buyer@example.com",
    )
    .await;
    assert!(html.contains("<div id=\"card-element\""), "{html}");
    assert!(
        html.contains("<script src=\"https://js.stripe.com/v3/\" async"),
        "{html}"
    );
    assert!(
        html.contains("data-stripe-key=\"pk_test_example\""),
        "{html}"
    );
    assert!(html.contains("id=\"stripe-unavailable\""), "{html}");
    assert!(
        html.contains("The card form is loaded from Stripe and could not load"),
        "{html}"
    );
    assert!(html.contains("type=\"hidden\" name=\"token\""), "{html}");
    assert!(
        !html.contains("tok_visa") && !html.contains("card-success"),
        "no test cards with Stripe: {html}"
    );
    drop(stack);

    let stack = Stack::start(Duration::from_secs(900)).await;
    let (_, _, html) =
        an_order_page(&stack, "dev-seller@example.com", "dev-buyer@example.com").await;
    assert!(html.contains("id=\"card-success\""), "{html}");
    assert!(html.contains("id=\"card-declined\""), "{html}");
    assert!(!html.contains("js.stripe.com/v3"), "{html}");
    assert!(!html.contains("card-element"), "{html}");
}

/// Asserts the security headers of a page: a policy with no inline script and no framing,
/// `nosniff`, a referrer policy, and no caching.
fn assert_secure_page(path: &str, headers: &header::HeaderMap) {
    let policy = headers
        .get(header::CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{path} has no Content-Security-Policy"))
        .to_str()
        .unwrap();
    assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
    assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{path}: {policy}"
    );
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{path}");
    assert_eq!(headers[header::REFERRER_POLICY], "same-origin", "{path}");
    assert_eq!(headers[header::CACHE_CONTROL], "no-store", "{path}");
}

/// Every `<script>` tag of a page: each must load a file (no inline script).
fn inline_scripts(html: &str) -> Vec<String> {
    html.match_indices("<script")
        .map(|(i, _)| html[i..html[i..].find('>').map_or(html.len(), |e| i + e + 1)].to_owned())
        .filter(|tag| !tag.contains(" src="))
        .collect()
}

#[tokio::test]
async fn pages_send_security_headers_and_no_inline_script() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, html) = an_order_page(
        &stack,
        "headers-seller@example.com",
        "headers-buyer@example.com",
    )
    .await;
    assert!(
        html.contains("<script src=\"/assets/countdown.js\""),
        "{html}"
    );

    for path in [
        "/",
        "/signin",
        "/orders",
        order.as_str(),
        "/tickets/new",
        "/events",
        "/events/new",
        "/events/mine",
    ] {
        let page = buyer.get(stack.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{path}");
        assert_secure_page(path, page.headers());
        let html = page.text().await.unwrap();
        assert_eq!(inline_scripts(&html), Vec::<String>::new(), "{path}");
    }
    let script = client()
        .get(stack.url("/assets/countdown.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert!(
        script.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(
        script.headers()[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .starts_with("public")
    );
    drop(stack);

    // With Stripe's card element, Stripe's script and frames are allowed, and only then.
    let stack = Stack::start_with(Duration::from_secs(900), Some("pk_test_example")).await;
    let (buyer, order, _) =
        an_order_page(&stack, "csp-seller@example.com", "csp-buyer@example.com").await;
    let page = buyer.get(stack.url(&order)).send().await.unwrap();
    assert_secure_page(&order, page.headers());
    let policy = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(
        policy.contains("script-src 'self' https://js.stripe.com"),
        "{policy}"
    );
    assert!(
        policy.contains("frame-src https://js.stripe.com"),
        "{policy}"
    );
}

/// A browser whose connections come from `address` (another loopback address: another
/// visitor).
fn visitor_at(address: [u8; 4]) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .local_address(std::net::IpAddr::from(address))
        .build()
        .unwrap()
}

#[tokio::test]
async fn web_sign_ins_count_against_each_visitors_own_budget() {
    let stack = Stack::configured(support::Config {
        window: Duration::from_secs(900),
        stripe_publishable_key: None,
        rate_limit_per_minute: 3,
        expiration_workers: 1,
    })
    .await;
    signed_up(&stack, "limited@example.com").await;
    let guesser = visitor_at([127, 0, 0, 2]);
    let signin = |browser: &reqwest::Client, password: &'static str| {
        browser
            .post(stack.url("/signin"))
            .header(header::ORIGIN, stack.origin())
            .form(&[("email", "limited@example.com"), ("password", password)])
            .send()
    };

    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(signin(&guesser, "wrong").await.unwrap().status());
    }
    let fourth = signin(&guesser, "secret1").await.unwrap();
    let other = signin(&visitor_at([127, 0, 0, 3]), "secret1")
        .await
        .unwrap();

    assert_eq!(statuses, [StatusCode::BAD_REQUEST; 3]);
    assert_eq!(fourth.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        other.status(),
        StatusCode::SEE_OTHER,
        "another visitor's sign-in through the same web pages is not refused"
    );
}

#[tokio::test]
async fn signing_out_on_the_web_revokes_the_session_a_copied_cookie_carries() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let browser = client();
    let signup = browser
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "copied@example.com"),
            ("password", "secret1"),
            ("next", "/"),
        ])
        .send()
        .await
        .unwrap();
    let copy = signup.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let with_copy = |path: &str| {
        client()
            .get(stack.url(path))
            .header(header::COOKIE, copy.clone())
            .send()
    };
    assert_eq!(with_copy("/orders").await.unwrap().status(), StatusCode::OK);

    let signout = browser
        .post(stack.url("/signout"))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();

    assert_eq!(signout.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        with_copy("/orders").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    let me: serde_json::Value = with_copy("/api/users/currentuser")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, serde_json::json!({"currentUser": null}));
}

/// Pays the order at `order` as `buyer` with the success card, through the order page's form,
/// and waits until the order page says it is paid.
async fn pay(stack: &Stack, buyer: &reqwest::Client, order: &str) {
    let paid = buyer
        .post(stack.url(&format!("{order}/pay")))
        .header(header::ORIGIN, stack.origin())
        .form(&[("card", "tok_visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    page_until(stack, buyer, order, "Paid", |html| has_status(html, "Paid")).await;
}

/// GETs `path` as `browser`, which must answer 200, and returns its HTML.
async fn page(stack: &Stack, browser: &reqwest::Client, path: &str) -> String {
    let page = browser.get(stack.url(path)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{path}");
    page.text().await.unwrap()
}

/// GETs `path` until its HTML satisfies `check` (an effect that travels by events), and
/// returns that HTML.
async fn page_until(
    stack: &Stack,
    browser: &reqwest::Client,
    path: &str,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let html = page(stack, browser, path).await;
        if check(&html) {
            return html;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{path} never showed {what}:\n{html}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether an order page's status badge reads `label`.
fn has_status(html: &str, label: &str) -> bool {
    html.contains(&format!("id=\"status\">{label}</span>"))
}

/// Whether an order page offers to pay or cancel.
fn offers_pay_or_cancel(html: &str) -> bool {
    html.contains("id=\"pay\"") || html.contains("id=\"cancel\"") || html.contains("/cancel\"")
}

/// Whether an order page offers a refund.
fn offers_refund(html: &str) -> bool {
    html.contains("id=\"refund\"") || html.contains("/refund\"")
}

/// The path of the ticket an order page links to (not the header's `/tickets/new`).
fn ticket_of(html: &str) -> String {
    html.match_indices("href=\"/tickets/")
        .map(|(i, _)| {
            let start = i + 6;
            let end = html[start..].find('"').unwrap() + start;
            &html[start..end]
        })
        .find(|path| Uuid::try_parse(path.trim_start_matches("/tickets/")).is_ok())
        .expect("a link to the ticket")
        .to_owned()
}

/// Posts the refund confirmation of `order` as `browser`, from our own page.
async fn post_refund(stack: &Stack, browser: &reqwest::Client, order: &str) -> reqwest::Response {
    browser
        .post(stack.url(&format!("{order}/refund")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_operator_refunds_a_buyers_paid_order_after_confirming_and_the_buyer_sees_it_refunded() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "refund-seller@example.com",
        "refund-buyer@example.com",
    )
    .await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    // Unpaid: the operator sees the order, without the buyer's controls, and nothing to refund.
    let html = page(&stack, &operator, &order).await;
    assert!(has_status(&html, "Awaiting payment"), "{html}");
    assert!(!offers_pay_or_cancel(&html), "{html}");
    assert!(!offers_refund(&html), "{html}");
    let early = operator
        .get(stack.url(&format!("{order}/refund")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        early.status(),
        StatusCode::SEE_OTHER,
        "nothing to refund yet"
    );
    assert_eq!(early.headers()[header::LOCATION], order.as_str());

    pay(&stack, &buyer, &order).await;

    // Paid: a Refund link, still no Pay or Cancel; the ticket is not called the operator's.
    let html = page(&stack, &operator, &order).await;
    assert!(has_status(&html, "Paid"), "{html}");
    assert!(
        html.contains(&format!("href=\"{order}/refund\" id=\"refund\"")),
        "{html}"
    );
    assert!(!offers_pay_or_cancel(&html), "{html}");
    let ticket = page(&stack, &operator, &ticket_of(&html)).await;
    assert!(
        !ticket.contains("Sold to you") && !ticket.contains("See your order"),
        "{ticket}"
    );

    // The link asks first; only the confirmation's form refunds.
    let confirm = page(&stack, &operator, &format!("{order}/refund")).await;
    assert!(confirm.contains("Refund $15.00 to the buyer?"), "{confirm}");
    assert!(
        confirm.contains(&format!("<form method=\"post\" action=\"{order}/refund\">")),
        "{confirm}"
    );
    assert!(
        has_status(&page(&stack, &operator, &order).await, "Paid"),
        "showing the confirmation refunded nothing"
    );
    let refunded = post_refund(&stack, &operator, &order).await;
    assert_eq!(refunded.status(), StatusCode::SEE_OTHER);
    let back = refunded.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(back, format!("{order}?refunded=1"));
    let html = page_until(&stack, &operator, &back, "the refund", |html| {
        has_status(html, "Refunded")
    })
    .await;
    assert!(
        html.contains("Refunded: the buyer gets $15.00 back"),
        "{html}"
    );
    assert!(
        !offers_refund(&html) && !offers_pay_or_cancel(&html),
        "{html}"
    );

    // Asking again is refused in the API's words, on the order page.
    let again = post_refund(&stack, &operator, &order).await;
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let html = again.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("already refunded"), "{html}");
    assert!(has_status(&html, "Refunded"), "{html}");

    // The buyer's orders say Refunded, and the order offers nothing to do.
    let list = page(&stack, &buyer, "/orders").await;
    assert!(
        list.contains("<span class=\"badge status-refunded\">Refunded</span>"),
        "{list}"
    );
    assert!(
        !list.contains(">Paid<") && !list.contains(">Cancelled<"),
        "{list}"
    );
    let html = page(&stack, &buyer, &order).await;
    assert!(has_status(&html, "Refunded"), "{html}");
    assert!(html.contains("goes back to your card"), "{html}");
    assert!(
        !offers_pay_or_cancel(&html) && !offers_refund(&html),
        "{html}"
    );
}

#[tokio::test]
async fn a_buyer_is_offered_no_refund_and_posting_one_is_refused_in_words() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) =
        an_order_page(&stack, "own-seller@example.com", "own-buyer@example.com").await;
    pay(&stack, &buyer, &order).await;

    let html = page(&stack, &buyer, &order).await;
    assert!(html.contains("Payment received"), "{html}");
    assert!(!offers_refund(&html), "{html}");

    let confirm = buyer
        .get(stack.url(&format!("{order}/refund")))
        .send()
        .await
        .unwrap();
    assert_eq!(confirm.status(), StatusCode::FORBIDDEN);
    assert!(confirm.text().await.unwrap().contains("Operators only"));

    let refused = post_refund(&stack, &buyer, &order).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let html = refused.text().await.unwrap();
    assert!(html.contains("Operators only"), "{html}");
    assert!(has_status(&page(&stack, &buyer, &order).await, "Paid"));

    // Anyone else who is no operator still cannot open the order.
    let stranger = signed_up(&stack, "stranger@example.com").await;
    let other = stranger.get(stack.url(&order)).send().await.unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    assert!(other.text().await.unwrap().contains("Not yours"));
}

#[tokio::test]
async fn a_refund_the_provider_refuses_or_leaves_unanswered_is_explained_on_the_order_page() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "dispute-seller@example.com",
        "dispute-buyer@example.com",
    )
    .await;
    pay(&stack, &buyer, &order).await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    stack.provider.set_refunds_refused(true);
    let refused = post_refund(&stack, &operator, &order).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let html = refused.text().await.unwrap();
    assert!(html.contains("This charge is disputed"), "{html}");
    assert!(has_status(&html, "Paid") && offers_refund(&html), "{html}");
    stack.provider.set_refunds_refused(false);

    stack.provider.set_unavailable(true);
    let unanswered = post_refund(&stack, &operator, &order).await;
    assert_eq!(unanswered.status(), StatusCode::OK, "not an error page");
    let html = unanswered.text().await.unwrap();
    assert!(html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("not answering"), "{html}");
    assert!(has_status(&html, "Paid") && offers_refund(&html), "{html}");
    stack.provider.set_unavailable(false);

    let refunded = post_refund(&stack, &operator, &order).await;
    assert_eq!(refunded.status(), StatusCode::SEE_OTHER);
    page_until(&stack, &buyer, &order, "the refund", |html| {
        has_status(html, "Refunded")
    })
    .await;
}

/// The text inside the element with this id (up to the next tag), if there is one.
fn text_of(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let start = html.find(&marker)? + marker.len();
    let start = html[start..].find('>')? + start + 1;
    let end = html[start..].find('<')? + start;
    Some(html[start..end].trim().to_owned())
}

/// Posts a console form to `path` as `browser` from our own page, with `back` as the page
/// to return to; returns the redirect's target and the page it shows, with its notice.
async fn console_action(
    stack: &Stack,
    browser: &reqwest::Client,
    path: &str,
    back: &str,
) -> (String, String) {
    let response = browser
        .post(stack.url(path))
        .header(header::ORIGIN, stack.origin())
        .form(&[("back", back)])
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{path}: {}",
        response.text().await.unwrap()
    );
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let page_path = location.split('#').next().unwrap().to_owned();
    let html = page(stack, browser, &page_path).await;
    (location, html)
}

#[tokio::test]
async fn only_operators_see_the_console_and_the_link_to_it() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let job = Uuid::now_v7();
    for path in ["/admin", "/admin/queues"] {
        let response = client().get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(
            response.headers()[header::LOCATION],
            format!("/signin?next={path}").as_str()
        );
    }

    let user = signed_up(&stack, "curious@example.com").await;
    for path in [
        "/admin".to_owned(),
        "/admin/queues".to_owned(),
        format!("/admin/jobs/{job}/discard"),
    ] {
        let response = user.get(stack.url(&path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("Operators only"), "{path}: {html}");
    }
    for path in [
        format!("/admin/services/orders/parked/{job}/replay"),
        format!("/admin/jobs/{job}/retry"),
        format!("/admin/jobs/{job}/promote"),
        format!("/admin/jobs/{job}/discard"),
    ] {
        let response = user
            .post(stack.url(&path))
            .header(header::ORIGIN, stack.origin())
            .form(&[("back", "/admin")])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
        assert!(response.text().await.unwrap().contains("Operators only"));
    }
    let home = page(&stack, &user, "/").await;
    assert!(!home.contains("href=\"/admin\""), "{home}");

    let operator = signed_up(&stack, OPERATOR_EMAIL).await;
    for path in ["/", "/orders", "/tickets/new"] {
        let html = page(&stack, &operator, path).await;
        assert!(
            html.contains(r#"<a href="/admin" id="console-link">Console</a>"#),
            "{path}: {html}"
        );
    }
    let console = page(&stack, &operator, "/admin").await;
    assert!(console.contains("<h1>Operations console</h1>"), "{console}");
    for part in [
        "queue-heading",
        "services-heading",
        "attention-heading",
        "actions-heading",
    ] {
        assert!(
            console.contains(&format!("id=\"{part}\"")),
            "{part}: {console}"
        );
    }
    let queue = page(&stack, &operator, "/admin/queues").await;
    assert!(
        queue.contains("<h1 id=\"queue-heading\">Expiration queue</h1>"),
        "{queue}"
    );
    assert!(queue.contains("id=\"queue-counts\""), "{queue}");
    assert!(
        !queue.contains("id=\"services-heading\""),
        "the queue alone: {queue}"
    );
    assert_eq!(inline_scripts(&console), Vec::<String>::new());
}

#[tokio::test]
async fn the_console_shows_the_queue_parked_events_and_payments_needing_attention() {
    let stack = Stack::without_expiration_workers().await;
    let (buyer, order, _) = an_order_page(
        &stack,
        "console-seller@example.com",
        "console-buyer@example.com",
    )
    .await;
    let order_id = order.trim_start_matches("/orders/").to_owned();
    pay(&stack, &buyer, &order).await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;
    // A refund the provider refuses.
    stack.provider.set_refunds_refused(true);
    let refused = post_refund(&stack, &operator, &order).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    // An expiry for an order orders never had: parked at once.
    let unknown = Uuid::now_v7();
    stack
        .publish(
            "expiration.complete",
            serde_json::json!({"orderId": unknown}),
        )
        .await;
    // A job whose publish failed until it gave up.
    let failed = Uuid::now_v7();
    stack.fail_a_job(failed).await;

    let html = page_until(&stack, &operator, "/admin", "the parked expiry", |html| {
        html.contains("id=\"parked-orders\"")
    })
    .await;

    // The queue: the buyer's order waits for its expiry, the failed job failed, nothing fired.
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("1"),
        "{html}"
    );
    assert_eq!(text_of(&html, "count-active").as_deref(), Some("0"));
    assert_eq!(text_of(&html, "count-failed").as_deref(), Some("1"));
    assert_eq!(text_of(&html, "count-completed").as_deref(), Some("0"));
    assert!(html.contains("id=\"lateness-empty\""), "{html}");
    assert!(html.contains("aria-current=\"page\">Failed"), "{html}");
    assert!(html.contains(&format!("id=\"job-{failed}\"")), "{html}");
    assert!(html.contains("NATS said no"), "the job's error: {html}");
    assert!(
        html.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{failed}/retry\""
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!("href=\"/admin/jobs/{failed}/discard?back=")),
        "{html}"
    );
    let delayed = page(&stack, &operator, "/admin?state=delayed").await;
    assert!(
        delayed.contains(&format!("id=\"job-{order_id}\"")),
        "{delayed}"
    );
    assert!(
        delayed.contains(&format!("<a href=\"/orders/{order_id}\">")),
        "{delayed}"
    );
    assert!(
        delayed.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{order_id}/promote\""
        )),
        "{delayed}"
    );
    assert!(
        !delayed.contains(&format!("id=\"job-{failed}\"")),
        "{delayed}"
    );

    // Every service, none unavailable; orders' consumers and its parked expiry.
    for service in ["auth", "tickets", "orders", "payments", "expiration"] {
        assert!(
            html.contains(&format!("id=\"service-{service}\"")),
            "{service}"
        );
        assert!(
            !html.contains(&format!("id=\"unavailable-{service}\"")),
            "{service}: {html}"
        );
    }
    assert!(text_of(&html, "outbox-orders").is_some(), "{html}");
    assert!(html.contains("id=\"consumers-orders\""), "{html}");
    let parked = &html[html.find("id=\"parked-orders\"").unwrap()..];
    assert!(
        parked.contains("<code>expiration.complete</code>"),
        "{parked}"
    );
    assert!(
        parked.contains(&unknown.to_string()),
        "the error names the order"
    );
    assert!(
        parked.contains("action=\"/admin/services/orders/parked/"),
        "a Replay button: {parked}"
    );

    // Payments: the refused refund, with the provider's words and who asked.
    let refusals = &html[html.find("id=\"refused-refunds\"").expect(&html)..];
    assert!(
        refusals.contains(&format!("href=\"/orders/{order_id}\"")),
        "{refusals}"
    );
    assert!(refusals.contains("$15.00"), "{refusals}");
    assert!(refusals.contains("disputed"), "{refusals}");
    assert!(refusals.contains("<td>you</td>"), "{refusals}");
    // The refund is the latest operator action.
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    assert!(
        actions.contains("<td>you</td>\n      <td>payments</td>\n      <td>refund</td>"),
        "{actions}"
    );
    assert!(actions.contains(&order_id), "{actions}");
}

#[tokio::test]
async fn replay_retry_promote_and_discard_post_to_the_api_and_say_what_became_of_them() {
    let stack = Stack::without_expiration_workers().await;
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;

    // Replay: refused while the order is unknown, applied once it exists.
    let unknown = Uuid::now_v7();
    stack
        .publish(
            "expiration.complete",
            serde_json::json!({"orderId": unknown}),
        )
        .await;
    let html = page_until(&stack, &operator, "/admin", "the parked expiry", |html| {
        html.contains("id=\"parked-orders\"")
    })
    .await;
    let at = html
        .find("action=\"/admin/services/orders/parked/")
        .unwrap()
        + 8;
    let replay = html[at..at + html[at..].find('"').unwrap()].to_owned();
    let (location, html) = console_action(&stack, &operator, &replay, "/admin").await;
    assert_eq!(location, "/admin", "back to the top, where the outcome is");
    assert_eq!(
        html.matches("id=\"notice\"").count(),
        1,
        "the outcome is said: {html}"
    );
    let notice = text_of(&html, "notice").unwrap();
    assert!(notice.contains("was not replayed in orders"), "{notice}");
    assert!(
        notice.contains("refused again"),
        "the API's words: {notice}"
    );
    assert!(
        html.contains("class=\"alert\" role=\"status\" id=\"notice\""),
        "{html}"
    );
    assert!(html.contains("id=\"parked-orders\""), "still parked");
    let again = page(&stack, &operator, "/admin").await;
    assert!(!again.contains("id=\"notice\""), "said once: {again}");

    let seller = signed_up(&stack, "replay-seller@example.com").await;
    let listed: serde_json::Value = seller
        .post(stack.url("/api/tickets"))
        .json(&serde_json::json!({"title": "Replayed Night", "price": 20}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ticket: Uuid = listed["id"].as_str().unwrap().parse().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut conn = stack.orders_db().pool.acquire().await.unwrap();
        // An order that ran out of time, as if orders had created it and lost its expiry.
        let inserted = ticketing_orders::store::orders::insert(
            &mut conn,
            unknown,
            Uuid::now_v7(),
            ticket,
            Duration::ZERO,
        )
        .await
        .unwrap();
        if inserted.is_some() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "orders never learnt the ticket"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, html) = console_action(&stack, &operator, &replay, "/admin").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.contains("was replayed in orders and applied"),
        "{notice}"
    );
    assert!(html.contains("class=\"success\" role=\"status\" id=\"notice\""));
    assert!(
        !html.contains("id=\"parked-orders\""),
        "no longer parked: {html}"
    );
    assert!(html.contains("id=\"parked-orders-none\""), "{html}");
    // Both replays are listed as the operator's.
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    assert_eq!(
        actions
            .matches("<td>you</td>\n      <td>orders</td>\n      <td>replay</td>")
            .count(),
        2,
        "{actions}"
    );
    // Replaying it again: the API no longer knows it.
    let (_, html) = console_action(&stack, &operator, &replay, "/admin").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(notice.contains("was not replayed in orders"), "{notice}");
    assert!(notice.to_lowercase().contains("not found"), "{notice}");

    // Retry: a failed job is due again, and fires.
    let failed = Uuid::now_v7();
    stack.fail_a_job(failed).await;
    let (location, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{failed}/retry"),
        "/admin/queues?state=failed",
    )
    .await;
    assert_eq!(location, "/admin/queues?state=failed");
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {failed} will run again now.")
    );
    assert_eq!(
        text_of(&html, "count-failed").as_deref(),
        Some("0"),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("1"),
        "{html}"
    );
    stack.fire_due_jobs().await;
    let html = page(&stack, &operator, "/admin/queues").await;
    assert_eq!(
        text_of(&html, "count-completed").as_deref(),
        Some("1"),
        "{html}"
    );
    assert!(html.contains("<svg"), "the lateness chart: {html}");
    assert!(html.contains("id=\"lateness-table\""), "{html}");
    // Retrying a job that is not failed is refused in the API's words, not an error page.
    let (_, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{failed}/retry"),
        "/admin/queues",
    )
    .await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.starts_with(&format!("Job {failed} was not retried: ")),
        "{notice}"
    );

    // Promote: a delayed job fires now.
    let later = Uuid::now_v7();
    assert!(
        stack
            .queue
            .enqueue(later, now_ms() + 3_600_000)
            .await
            .unwrap()
    );
    let (_, html) = console_action(
        &stack,
        &operator,
        &format!("/admin/jobs/{later}/promote"),
        "/admin?state=delayed",
    )
    .await;
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {later} fires now.")
    );
    stack.fire_due_jobs().await;
    let html = page(&stack, &operator, "/admin/queues?state=delayed").await;
    assert_eq!(
        text_of(&html, "count-completed").as_deref(),
        Some("2"),
        "{html}"
    );
    assert_eq!(
        text_of(&html, "count-delayed").as_deref(),
        Some("0"),
        "{html}"
    );

    // Discard: asked first, without script; then gone from the failed jobs.
    let doomed = Uuid::now_v7();
    stack.fail_a_job(doomed).await;
    let confirm = page(
        &stack,
        &operator,
        &format!("/admin/jobs/{doomed}/discard?back=/admin/queues%3Fstate%3Dfailed"),
    )
    .await;
    assert!(
        confirm.contains(&format!("Discard job {doomed}?")),
        "{confirm}"
    );
    assert!(
        confirm.contains("NATS said no"),
        "the job's error: {confirm}"
    );
    assert!(
        confirm.contains(&format!(
            "<form method=\"post\" action=\"/admin/jobs/{doomed}/discard\">"
        )),
        "{confirm}"
    );
    assert!(
        confirm.contains("name=\"back\" value=\"/admin/queues?state=failed\""),
        "{confirm}"
    );
    assert_eq!(
        text_of(
            &page(&stack, &operator, "/admin/queues").await,
            "count-failed"
        )
        .as_deref(),
        Some("1"),
        "showing the confirmation discarded nothing"
    );
    let discard = format!("/admin/jobs/{doomed}/discard");
    let (_, html) = console_action(&stack, &operator, &discard, "/admin/queues?state=failed").await;
    assert_eq!(
        text_of(&html, "notice").unwrap(),
        format!("Job {doomed} was discarded.")
    );
    assert_eq!(
        text_of(&html, "count-failed").as_deref(),
        Some("0"),
        "{html}"
    );
    assert!(!html.contains(&format!("id=\"job-{doomed}\"")), "{html}");
    let (_, html) = console_action(&stack, &operator, &discard, "/admin/queues?state=failed").await;
    let notice = text_of(&html, "notice").unwrap();
    assert!(
        notice.starts_with(&format!("Job {doomed} was not discarded: ")),
        "{notice}"
    );

    // The queue's actions are listed with the services'.
    let html = page(&stack, &operator, "/admin").await;
    let actions = &html[html.find("id=\"operator-actions\"").expect(&html)..];
    for action in ["retry", "promote", "discard"] {
        assert!(
            actions.contains(&format!("<td>expiration</td>\n      <td>{action}</td>")),
            "{action}: {actions}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Error pages, one-shot messages, the receipt, cancelling and paying without script.

/// The text of the element with this id (up to its closing tag), if the page has it.
fn element_text(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find("</")? + start;
    Some(html[start..end].trim().to_owned())
}

/// Asserts `response` is an HTML page in the site's layout with `status`, whose header shows
/// `email` as signed in (or the sign-in link for `None`); returns its HTML.
async fn layout_page(
    response: reqwest::Response,
    status: StatusCode,
    email: Option<&str>,
) -> String {
    let url = response.url().to_string();
    assert_eq!(response.status(), status, "{url}");
    let content_type = response.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/html"),
        "{url}: {content_type}"
    );
    assert_secure_page(&url, response.headers());
    let html = response.text().await.unwrap();
    assert!(html.contains("<header class=\"site\">"), "{url}: {html}");
    assert!(
        html.contains("<link rel=\"stylesheet\" href=\"/assets/site.css\">"),
        "{url}"
    );
    match email {
        Some(email) => {
            assert!(
                html.contains(&format!(
                    "<span class=\"who\" title=\"Signed in\">{email}</span>"
                )),
                "{url}: the header names {email}: {html}"
            );
            assert!(html.contains("action=\"/signout\""), "{url}");
        }
        None => assert!(
            html.contains("href=\"/signin\"") && !html.contains("action=\"/signout\""),
            "{url}: a signed-out header: {html}"
        ),
    }
    html
}

/// Asserts `response` is the contract's JSON error body with `status`.
async fn json_error(response: reqwest::Response, status: StatusCode) {
    let url = response.url().to_string();
    assert_eq!(response.status(), status, "{url}");
    assert!(
        response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/json"),
        "{url}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["errors"][0]["message"].is_string(),
        "{url}: the contract's error body: {body}"
    );
}

#[tokio::test]
async fn unknown_pages_and_malformed_ids_are_404_pages_with_the_visitors_header_and_the_api_keeps_json()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let visitor = signed_up(&stack, "lost@example.com").await;
    let anonymous = client();

    for path in ["/no/such/page", "/tickets/not-an-id", "/tickets/42/edit"] {
        let html = layout_page(
            visitor.get(stack.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            Some("lost@example.com"),
        )
        .await;
        assert!(element_text(&html, "message").is_some(), "{path}: {html}");
        assert!(html.contains("Page not found"), "{path}: {html}");
    }
    // Malformed ids in any page's path, signed in: the 404 page, never a plain-text 400.
    for path in [
        "/orders/not-an-id",
        "/orders/1234/cancel",
        "/tickets/xyz/withdraw",
        "/orders/%3Cscript%3E",
        "/?before=not-an-id",
        "/listings?after=nope",
    ] {
        layout_page(
            visitor.get(stack.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            Some("lost@example.com"),
        )
        .await;
    }
    layout_page(
        anonymous
            .get(stack.url("/no/such/page"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    layout_page(
        anonymous
            .get(stack.url("/tickets/not-an-id"))
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    // A page that needs a session still sends a signed-out visitor to sign in first.
    for path in ["/orders/not-an-id", "/listings", "/orders/1/cancel"] {
        let response = anonymous.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(
            response.headers()[header::LOCATION]
                .to_str()
                .unwrap()
                .starts_with("/signin?next=/"),
            "{path}"
        );
    }

    // The API's own paths, and clients asking for JSON, keep the contract's JSON body.
    for path in [
        "/api/no-such-route",
        "/api/tickets/not-an-id",
        "/api/orders/not-an-id",
        "/api",
    ] {
        json_error(
            visitor.get(stack.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
    }
    json_error(
        visitor
            .get(stack.url("/no/such/page"))
            .header(header::ACCEPT, "application/json")
            .send()
            .await
            .unwrap(),
        StatusCode::NOT_FOUND,
    )
    .await;
    json_error(
        visitor
            .delete(stack.url("/api/tickets"))
            .send()
            .await
            .unwrap(),
        StatusCode::METHOD_NOT_ALLOWED,
    )
    .await;

    // A method a page does not take: the 405 page, with `Allow`.
    let put = visitor
        .put(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();
    let allow = put.headers()[header::ALLOW].to_str().unwrap().to_owned();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    layout_page(
        put,
        StatusCode::METHOD_NOT_ALLOWED,
        Some("lost@example.com"),
    )
    .await;

    // A forged form post is refused on a page with the visitor's header too.
    let forged = visitor
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[("title", "Forged"), ("price", "10")])
        .send()
        .await
        .unwrap();
    layout_page(forged, StatusCode::FORBIDDEN, Some("lost@example.com")).await;
}

#[tokio::test]
async fn someone_elses_order_is_a_403_page_and_a_failing_backend_a_502_page_with_the_visitors_header()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (_, order, _) =
        an_order_page(&stack, "err-seller@example.com", "err-buyer@example.com").await;
    let stranger = signed_up(&stack, "stranger2@example.com").await;

    let html = layout_page(
        stranger.get(stack.url(&order)).send().await.unwrap(),
        StatusCode::FORBIDDEN,
        Some("stranger2@example.com"),
    )
    .await;
    assert!(html.contains("Not yours"), "{html}");
    assert!(html.contains("sign in with the account"), "{html}");
    // Its forms' addresses, reopened, are no way round it.
    for path in [format!("{order}/cancel")] {
        layout_page(
            stranger.get(stack.url(&path)).send().await.unwrap(),
            StatusCode::FORBIDDEN,
            Some("stranger2@example.com"),
        )
        .await;
    }

    // The orders service fails: the order page is a 502 page, not a blank or a JSON body.
    stack.break_table(stack.orders_db(), "orders").await;
    let html = layout_page(
        stranger.get(stack.url(&order)).send().await.unwrap(),
        StatusCode::BAD_GATEWAY,
        Some("stranger2@example.com"),
    )
    .await;
    assert!(html.contains("Please try again"), "{html}");
    let html = layout_page(
        stranger.get(stack.url("/orders")).send().await.unwrap(),
        StatusCode::BAD_GATEWAY,
        Some("stranger2@example.com"),
    )
    .await;
    assert!(html.contains("Please try again"), "{html}");
    // The API itself still answers in JSON.
    json_error(
        stranger.get(stack.url("/api/orders")).send().await.unwrap(),
        StatusCode::INTERNAL_SERVER_ERROR,
    )
    .await;
}

/// The `flash` cookie a response sets, if any (`None` when it clears one).
fn flash_set(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("flash="))
        .map(str::to_owned)
}

#[tokio::test]
async fn a_declined_card_comes_back_to_the_order_page_with_the_reason_and_paying_shows_the_receipt()
{
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) =
        an_order_page(&stack, "rcpt-seller@example.com", "rcpt-buyer@example.com").await;

    // Declined: 303 back to the order (no `/pay` page left to reopen), the reason on top.
    let declined = buyer
        .post(stack.url(&format!("{order}/pay")))
        .header(header::ORIGIN, stack.origin())
        .form(&[("card", "tok_chargeDeclined")])
        .send()
        .await
        .unwrap();
    assert_eq!(declined.status(), StatusCode::SEE_OTHER);
    assert_eq!(declined.headers()[header::LOCATION], order.as_str());
    assert!(flash_set(&declined).is_some_and(|c| c.contains("HttpOnly")));
    let shown = buyer.get(stack.url(&order)).send().await.unwrap();
    assert!(
        flash_set(&shown).is_some_and(|c| c.contains("Max-Age=0")),
        "the page that shows the message forgets it"
    );
    let html = layout_page(shown, StatusCode::OK, Some("rcpt-buyer@example.com")).await;
    let message = element_text(&html, "flash").expect("the reason on top");
    assert!(
        message.contains("declined") && message.contains("Try another card"),
        "{message}"
    );
    assert!(has_status(&html, "Awaiting payment"), "{html}");
    assert!(html.contains("id=\"pay\""), "still payable");
    let again = page(&stack, &buyer, &order).await;
    assert_eq!(element_text(&again, "flash"), None, "said once");
    // The form's address reopened (history, a reload after the redirect): the order.
    let reopened = buyer
        .get(stack.url(&format!("{order}/pay")))
        .send()
        .await
        .unwrap();
    assert_eq!(reopened.status(), StatusCode::SEE_OTHER);
    assert_eq!(reopened.headers()[header::LOCATION], order.as_str());

    // Paid: "Paid." on top of the receipt.
    let paid = buyer
        .post(stack.url(&format!("{order}/pay")))
        .header(header::ORIGIN, stack.origin())
        .form(&[("card", "tok_visa")])
        .send()
        .await
        .unwrap();
    assert_eq!(paid.status(), StatusCode::SEE_OTHER);
    let back = paid.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(back.starts_with(&order), "{back}");
    let html = page(&stack, &buyer, &back).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Paid. Thank you!")
    );
    let html = page_until(&stack, &buyer, &order, "the receipt", |h| {
        h.contains("id=\"receipt-when\"")
    })
    .await;
    let order_id = order.trim_start_matches("/orders/");
    assert_eq!(
        element_text(&html, "receipt-order").as_deref(),
        Some(order_id)
    );
    assert_eq!(
        element_text(&html, "receipt-ticket").as_deref(),
        Some("Card Form Night")
    );
    assert_eq!(
        element_text(&html, "receipt-amount").as_deref(),
        Some("$15.00")
    );
    assert_eq!(
        element_text(&html, "receipt-card").as_deref(),
        Some("Visa ending in 4242")
    );
    // When, in UTC and labelled so, inside <time datetime> for the script to localise.
    let when = &html[html.find("id=\"receipt-when\"").unwrap()..];
    assert!(
        when.contains("<time datetime=\"20") && when.contains("Z\" data-local=\"datetime\">"),
        "{when}"
    );
    assert!(element_text(when, "receipt-when").is_some());
    let time_text = &when[when.find("data-local=\"datetime\">").unwrap() + 22..];
    assert!(
        time_text[..time_text.find("</time>").unwrap()].ends_with(" UTC"),
        "{time_text}"
    );
    assert!(html.contains("<script src=\"/assets/local-time.js\" defer></script>"));
    assert_eq!(element_text(&html, "receipt-missing"), None);
}

#[tokio::test]
async fn a_receipt_whose_payments_cannot_be_read_still_shows_the_order() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, _) =
        an_order_page(&stack, "gone-seller@example.com", "gone-buyer@example.com").await;
    pay(&stack, &buyer, &order).await;
    stack.break_table(stack.payments_db(), "payments").await;

    let html = page(&stack, &buyer, &order).await;
    assert!(has_status(&html, "Paid"), "{html}");
    assert_eq!(
        element_text(&html, "receipt-ticket").as_deref(),
        Some("Card Form Night")
    );
    assert_eq!(
        element_text(&html, "receipt-amount").as_deref(),
        Some("$15.00")
    );
    assert!(
        element_text(&html, "receipt-order").is_some_and(|id| order.ends_with(&id)),
        "{html}"
    );
    assert!(
        element_text(&html, "receipt-missing")
            .is_some_and(|m| m.contains("cannot be shown right now")),
        "{html}"
    );
    assert_eq!(element_text(&html, "receipt-card"), None);
}

#[tokio::test]
async fn cancelling_asks_first_on_a_page_of_its_own_and_works_without_script() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (buyer, order, html) =
        an_order_page(&stack, "cncl-seller@example.com", "cncl-buyer@example.com").await;

    // The order page only links to the question; nothing on it posts a cancellation.
    assert!(
        html.contains(&format!("href=\"{order}/cancel\" id=\"cancel\"")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("action=\"{order}/cancel\"")),
        "{html}"
    );
    let confirm = page(&stack, &buyer, &format!("{order}/cancel")).await;
    assert!(
        element_text(&confirm, "question")
            .is_some_and(|q| q == "Cancel your order for Card Form Night?"),
        "{confirm}"
    );
    assert!(
        confirm.contains(&format!("<form method=\"post\" action=\"{order}/cancel\">")),
        "{confirm}"
    );
    assert!(confirm.contains(&format!("href=\"{order}\" id=\"keep\"")));
    assert!(
        has_status(&page(&stack, &buyer, &order).await, "Awaiting payment"),
        "asking cancelled nothing"
    );

    let cancelled = buyer
        .post(stack.url(&format!("{order}/cancel")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    assert_eq!(cancelled.headers()[header::LOCATION], order.as_str());
    let html = page(&stack, &buyer, &order).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Cancelled. The ticket is back on sale.")
    );
    assert!(has_status(&html, "Cancelled"), "{html}");
    assert!(!offers_pay_or_cancel(&html), "{html}");

    // Nothing left to cancel: the question is not asked, the order says what it is.
    let again = buyer
        .get(stack.url(&format!("{order}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(again.headers()[header::LOCATION], order.as_str());
    // And posting again is refused in the API's words, back on the order.
    let twice = buyer
        .post(stack.url(&format!("{order}/cancel")))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn the_countdown_warns_in_its_last_minute_even_without_script() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let (_, _, html) =
        an_order_page(&stack, "warn-seller@example.com", "warn-buyer@example.com").await;
    assert!(
        html.contains("id=\"hold-warning\" role=\"status\" hidden>"),
        "{html}"
    );
    assert!(html.contains("<div id=\"live\" class=\"live\">"), "{html}");
    assert!(html.contains("data-warn=\"60\""), "{html}");
    // The deadline, in UTC and labelled so.
    assert!(html.contains("(until <time datetime=\""), "{html}");
    drop(stack);

    let stack = Stack::start(Duration::from_secs(50)).await;
    let (_, _, html) = an_order_page(
        &stack,
        "warn2-seller@example.com",
        "warn2-buyer@example.com",
    )
    .await;
    assert!(
        html.contains("id=\"hold-warning\" role=\"status\">"),
        "{html}"
    );
    assert!(
        html.contains("<div id=\"live\" class=\"live ending\">"),
        "{html}"
    );
}

#[tokio::test]
async fn messages_say_what_went_through_once_and_cannot_be_made_to_say_anything_else() {
    let stack = Stack::start(Duration::from_secs(900)).await;

    // Sign-up: a welcome on the page `next` leads to.
    let seller = client();
    let signup = seller
        .post(stack.url("/signup"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "flash@example.com"),
            ("password", "secret1"),
            ("next", "/orders"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), StatusCode::SEE_OTHER);
    assert!(flash_set(&signup).is_some_and(|c| c.starts_with("flash=ok.welcome;")));
    let html = page(&stack, &seller, "/orders").await;
    assert!(
        element_text(&html, "flash").is_some_and(|m| m.starts_with("Welcome")),
        "{html}"
    );
    assert_eq!(
        element_text(&page(&stack, &seller, "/").await, "flash"),
        None
    );

    // Listing, with a price as people type it: "Listed." on the ticket's page.
    let listed = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "Flash Gig"), ("price", " $25,50 ")])
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::SEE_OTHER);
    let ticket = listed.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let html = page(&stack, &seller, &ticket).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Listed. Your ticket is on sale.")
    );
    assert_eq!(
        element_text(&html, "ticket-price").as_deref(),
        Some("$25.50")
    );

    // Editing: "Saved."
    let saved = seller
        .post(stack.url(&format!("{ticket}/edit")))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "Flash Gig"), ("price", "1,250.5")])
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status(), StatusCode::SEE_OTHER);
    assert_eq!(saved.headers()[header::LOCATION], ticket.as_str());
    let html = page(&stack, &seller, &ticket).await;
    assert_eq!(element_text(&html, "flash").as_deref(), Some("Saved."));
    assert_eq!(
        element_text(&html, "ticket-price").as_deref(),
        Some("$1250.50")
    );

    // A message in the cookie is shown escaped; a code we do not know says nothing; the
    // address cannot carry one at all.
    let forged = client()
        .get(stack.url("/"))
        .header(
            header::COOKIE,
            "flash=no.%3Cscript%3Ealert(1)%3C%2Fscript%3E%3Cb%3Ehi%3C%2Fb%3E",
        )
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!forged.contains("<script>alert"), "{forged}");
    assert!(!forged.contains("<b>hi"), "{forged}");
    let shown = element_text(&forged, "flash").expect("the message is shown");
    assert_eq!(
        shown, "&#60;script&#62;alert(1)&#60;/script&#62;&#60;b&#62;hi&#60;/b&#62;",
        "escaped: {forged}"
    );
    let unknown = client()
        .get(stack.url("/"))
        .header(header::COOKIE, "flash=ok.You%20won")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(element_text(&unknown, "flash"), None, "{unknown}");
    let addressed = page(
        &stack,
        &client(),
        "/?flash=ok.paid&message=%3Cscript%3E&notice=Paid",
    )
    .await;
    assert_eq!(element_text(&addressed, "flash"), None, "{addressed}");
}

#[tokio::test]
async fn the_sell_form_takes_prices_as_people_type_them_and_explains_what_is_not_a_price() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let seller = signed_up(&stack, "prices@example.com").await;

    for (typed, shown) in [("$25", "$25.00"), ("25,50", "$25.50"), (" 25.5 ", "$25.50")] {
        let listed = seller
            .post(stack.url("/tickets/new"))
            .header(header::ORIGIN, stack.origin())
            .form(&[("title", "Priced"), ("price", typed)])
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::SEE_OTHER, "{typed:?}");
        let ticket = listed.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        let html = page(&stack, &seller, &ticket).await;
        assert_eq!(
            element_text(&html, "ticket-price").as_deref(),
            Some(shown),
            "{typed:?}"
        );
    }

    // Not a number: our sentence under the price, the API's under the title, what was
    // typed kept, nothing listed.
    let refused = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "  "), ("price", "twenty <b>")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert_eq!(
        error_text(&html, "price-error").as_deref(),
        Some("Enter the price as a number of dollars, like 25, 25.50 or $25,50.")
    );
    assert!(error_text(&html, "title-error").is_some(), "{html}");
    assert!(html.contains("value=\"twenty &#60;b&#62;\""), "{html}");
    // A number the API refuses: its own words.
    let refused = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "Too precise"), ("price", "$25.555")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert!(
        error_text(&html, "price-error").is_some_and(|m| m.contains("two decimals")),
        "{html}"
    );
    let home = page(&stack, &client(), "/").await;
    assert_eq!(home.matches("class=\"ticket-row\"").count(), 3, "{home}");
}

// ---------------------------------------------------------------------------------------
// Page weights.

/// The most a page may weigh: its HTML plus every style sheet and script it loads.
const PAGE_BUDGET: usize = 20 * 1024;

/// Every `attr="…"` value in `html`.
fn attribute_values<'a>(html: &'a str, attr: &str) -> Vec<&'a str> {
    let needle = format!(" {attr}=\"");
    html.match_indices(&needle)
        .filter_map(|(i, _)| {
            let start = i + needle.len();
            html[start..].find('"').map(|end| &html[start..start + end])
        })
        .collect()
}

/// The style sheets and scripts a page loads.
fn subresources(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in html.match_indices("<link ") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        if tag.contains("rel=\"stylesheet\"") {
            found.extend(attribute_values(tag, "href").into_iter().map(str::to_owned));
        }
    }
    for (i, _) in html.match_indices("<script ") {
        let tag = &html[i..i + html[i..].find('>').unwrap()];
        found.extend(attribute_values(tag, "src").into_iter().map(str::to_owned));
    }
    found
}

/// What one page weighs: its HTML and each subresource, in bytes.
async fn weigh(
    stack: &Stack,
    browser: &reqwest::Client,
    path: &str,
) -> (usize, Vec<(String, usize)>) {
    let response = browser.get(stack.url(path)).send().await.unwrap();
    assert!(
        response.status().is_success() || response.status().is_client_error(),
        "{path}: {}",
        response.status()
    );
    let html = response.text().await.unwrap();
    // Nothing from another origin: every address a page loads or sends to is ours.
    for attr in ["src", "href", "action"] {
        for value in attribute_values(&html, attr) {
            assert!(
                value.starts_with('/') && !value.starts_with("//")
                    || value.starts_with('#')
                    || value == "data:,",
                "{path}: {attr}=\"{value}\" leaves the site"
            );
        }
    }
    let mut parts = Vec::new();
    for asset in subresources(&html) {
        let body = browser.get(stack.url(&asset)).send().await.unwrap();
        assert_eq!(body.status(), StatusCode::OK, "{path}: {asset}");
        parts.push((asset, body.bytes().await.unwrap().len()));
    }
    (html.len(), parts)
}

#[tokio::test]
async fn every_page_weighs_under_20_kb_with_its_styles_and_scripts_and_loads_nothing_from_elsewhere()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let seller = signed_up(&stack, "weights-seller@example.com").await;
    for i in 0..25 {
        let listed = seller
            .post(stack.url("/api/tickets"))
            .json(&serde_json::json!({"title": format!("A concert with a fairly long title, number {i:02}"), "price": 19.99}))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::CREATED);
    }
    let (buyer, order, _) = an_order_page(
        &stack,
        "weights-seller2@example.com",
        "weights-buyer@example.com",
    )
    .await;
    let ticket = ticket_of(&page(&stack, &buyer, &order).await);
    let (_, paid, _) = an_order_page(
        &stack,
        "weights-seller3@example.com",
        "weights-buyer3@example.com",
    )
    .await;
    let buyer3 = client();
    buyer3
        .post(stack.url("/signin"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("email", "weights-buyer3@example.com"),
            ("password", "secret1"),
        ])
        .send()
        .await
        .unwrap();
    pay(&stack, &buyer3, &paid).await;
    let first = page(&stack, &client(), "/").await;
    let older = attribute_values(&first, "href")
        .into_iter()
        .find(|h| h.starts_with("/?before="))
        .expect("a next page")
        .to_owned();
    let operator = signed_up(&stack, OPERATOR_EMAIL).await;
    let anonymous = client();
    let listed = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", "To edit"), ("price", "12")])
        .send()
        .await
        .unwrap();
    let own = listed.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    // A full page of events with long titles and venues, one with a long description; a
    // buyer holding a seat of it.
    let mut events = Vec::new();
    for i in 0..12 {
        events.push(
            api_event(
                &stack,
                &seller,
                &format!("A festival evening with a fairly long title, number {i:02}"),
                serde_json::json!({
                    "venue": "The Grand Municipal Concert Hall of the Old Town, East Wing",
                    "startsAt": rfc3339(days_ahead(10 + i)),
                    "description": "An evening of music.\n".repeat(60),
                }),
            )
            .await,
        );
    }
    let event = events[0].clone();
    let seat_order = location(&buy_seat(&stack, &buyer, &event).await);

    let pages: Vec<(&str, &reqwest::Client, String)> = vec![
        ("home", &anonymous, "/".into()),
        ("home, next page", &anonymous, older),
        ("sign in", &anonymous, "/signin".into()),
        ("sign up", &anonymous, "/signup".into()),
        ("sell form", &seller, "/tickets/new".into()),
        ("ticket, reserved by the visitor", &buyer, ticket.clone()),
        ("ticket, the seller's own", &seller, own.clone()),
        ("edit form", &seller, format!("{own}/edit")),
        ("order, awaiting payment", &buyer, order.clone()),
        ("order, cancel question", &buyer, format!("{order}/cancel")),
        ("order, paid (receipt)", &buyer3, paid.clone()),
        ("my orders, one of them a seat", &buyer, "/orders".into()),
        ("my listings, a full page", &seller, "/listings".into()),
        ("withdraw question", &seller, format!("{own}/withdraw")),
        ("404 page", &buyer, "/no/such/page".into()),
        ("403 page", &seller, order.clone()),
        ("refund question", &operator, format!("{paid}/refund")),
        ("console", &operator, "/admin".into()),
        ("console queue", &operator, "/admin/queues".into()),
        ("events, a full page", &anonymous, "/events".into()),
        (
            "events, a search",
            &anonymous,
            "/events?q=festival+evening".into(),
        ),
        ("event, signed out", &anonymous, event.clone()),
        ("event, a buyer holding a seat", &buyer, event.clone()),
        ("event, the organiser's", &seller, event.clone()),
        ("create event form", &seller, "/events/new".into()),
        ("edit event form", &seller, format!("{event}/edit")),
        ("my events, a full page", &seller, "/events/mine".into()),
        ("order of a seat", &buyer, seat_order.clone()),
        (
            "event 404 page",
            &buyer,
            format!("/events/{}", Uuid::now_v7()),
        ),
    ];
    let mut report = String::from("page\thtml\tcss+js\ttotal (bytes)\n");
    let mut over = Vec::new();
    for (name, browser, path) in &pages {
        let (html, parts) = weigh(&stack, browser, path).await;
        let assets: usize = parts.iter().map(|(_, n)| n).sum();
        let total = html + assets;
        let line = format!(
            "{name} ({path})\t{html}\t{assets} ({})\t{total}\n",
            parts
                .iter()
                .map(|(a, n)| format!("{a} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        report.push_str(&line);
        if total > PAGE_BUDGET {
            over.push(line);
        }
    }
    println!("{report}");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/test-output");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("page-weights.tsv"), &report).unwrap();
    assert!(
        over.is_empty(),
        "over {PAGE_BUDGET} bytes:\n{}",
        over.concat()
    );
}

// ---------------------------------------------------------------------------------------
// The seller's listings, withdrawing, and paging both ways.

/// Lists a ticket through the sell form as `seller`; returns its page's path.
async fn list_through_form(
    stack: &Stack,
    seller: &reqwest::Client,
    title: &str,
    price: &str,
) -> String {
    let listed = seller
        .post(stack.url("/tickets/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[("title", title), ("price", price)])
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::SEE_OTHER, "{title}");
    listed.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// The state badge of a listing on /listings.
fn listing_state(html: &str, ticket: &str) -> Option<String> {
    element_text(
        html,
        &format!("status-{}", ticket.trim_start_matches("/tickets/")),
    )
}

/// Posts `path` (a form's action) as `browser`, from our own page.
async fn post_form(stack: &Stack, browser: &reqwest::Client, path: &str) -> reqwest::Response {
    browser
        .post(stack.url(path))
        .header(header::ORIGIN, stack.origin())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_seller_sees_every_listing_in_its_state_and_withdraws_an_available_one_after_confirming()
{
    let stack = Stack::start(Duration::from_secs(900)).await;
    let seller = signed_up(&stack, "lister@example.com").await;
    let empty = page(&stack, &seller, "/listings").await;
    assert!(
        empty.contains("You have not listed any tickets yet"),
        "{empty}"
    );
    assert!(
        empty.contains("href=\"/listings\" id=\"listings-link\""),
        "{empty}"
    );

    let sold = list_through_form(&stack, &seller, "Sold Show", "10").await;
    let reserved = list_through_form(&stack, &seller, "Reserved Show", "20").await;
    let available = list_through_form(&stack, &seller, "Available Show", "30").await;
    let buyer = signed_up(&stack, "lister-buyer@example.com").await;
    for ticket in [&sold, &reserved] {
        let purchased = post_form(&stack, &buyer, &format!("{ticket}/purchase")).await;
        assert_eq!(purchased.status(), StatusCode::SEE_OTHER);
        let order = purchased.headers()[header::LOCATION]
            .to_str()
            .unwrap()
            .to_owned();
        if ticket == &sold {
            pay(&stack, &buyer, &order).await;
        }
    }

    // Newest first, each in its state; Edit and Withdraw on the available one only.
    let html = page_until(&stack, &seller, "/listings", "the sale and the hold", |h| {
        listing_state(h, &sold).as_deref() == Some("Sold")
            && listing_state(h, &reserved).as_deref() == Some("Reserved")
    })
    .await;
    assert_eq!(
        listing_state(&html, &available).as_deref(),
        Some("Available")
    );
    let order_on_page = |title: &str| html.find(&format!(">{title}</a>")).unwrap();
    assert!(order_on_page("Available Show") < order_on_page("Reserved Show"));
    assert!(order_on_page("Reserved Show") < order_on_page("Sold Show"));
    assert!(
        html.contains(&format!(
            "href=\"{available}/edit\" aria-label=\"Edit Available Show\""
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "href=\"{available}/withdraw\" aria-label=\"Withdraw Available Show\""
        )),
        "{html}"
    );
    for taken in [&sold, &reserved] {
        assert!(!html.contains(&format!("{taken}/edit")), "{html}");
        assert!(!html.contains(&format!("{taken}/withdraw")), "{html}");
    }
    assert_eq!(html.matches("class=\"listing\"").count(), 3, "{html}");

    // The ticket's own page says its state, and its seller gets no Edit on a taken ticket.
    let ticket = page(&stack, &seller, &reserved).await;
    assert!(
        element_text(&ticket, "ticket-state").is_some_and(|s| s.starts_with("Reserved")),
        "{ticket}"
    );
    assert!(!ticket.contains("id=\"edit\"") && !ticket.contains("id=\"withdraw\""));
    let ticket = page(&stack, &client(), &sold).await;
    assert!(
        element_text(&ticket, "ticket-state").is_some_and(|s| s.starts_with("Sold")),
        "{ticket}"
    );
    // Opening edit or withdraw on a taken ticket says why, before anything is typed.
    for path in [format!("{reserved}/edit"), format!("{sold}/withdraw")] {
        let refused = seller.get(stack.url(&path)).send().await.unwrap();
        let html = layout_page(refused, StatusCode::CONFLICT, Some("lister@example.com")).await;
        assert!(html.contains("cannot be"), "{path}: {html}");
        assert!(!html.contains("name=\"price\""), "{path}: no form");
    }
    // Someone else's ticket is not theirs to withdraw.
    let other = buyer
        .get(stack.url(&format!("{available}/withdraw")))
        .send()
        .await
        .unwrap();
    layout_page(
        other,
        StatusCode::FORBIDDEN,
        Some("lister-buyer@example.com"),
    )
    .await;

    // Withdraw asks first; only its form withdraws.
    let confirm = page(&stack, &seller, &format!("{available}/withdraw")).await;
    assert_eq!(
        element_text(&confirm, "question").as_deref(),
        Some("Withdraw Available Show?")
    );
    assert!(
        confirm.contains(&format!(
            "<form method=\"post\" action=\"{available}/withdraw\">"
        )),
        "{confirm}"
    );
    assert!(
        page(&stack, &client(), "/")
            .await
            .contains("Available Show")
    );
    let withdrawn = post_form(&stack, &seller, &format!("{available}/withdraw")).await;
    assert_eq!(withdrawn.status(), StatusCode::SEE_OTHER);
    assert_eq!(withdrawn.headers()[header::LOCATION], "/listings");
    let html = page(&stack, &seller, "/listings").await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Withdrawn. The ticket is no longer on sale.")
    );
    assert_eq!(
        listing_state(&html, &available),
        None,
        "gone from the listings"
    );
    assert_eq!(html.matches("class=\"listing\"").count(), 2);
    let gone = client().get(stack.url(&available)).send().await.unwrap();
    layout_page(gone, StatusCode::NOT_FOUND, None).await;
    page_until(&stack, &client(), "/", "the ticket off sale", |h| {
        !h.contains("Available Show")
    })
    .await;

    // A second click, or a ticket taken meanwhile: back on the listings with the reason.
    let again = post_form(&stack, &seller, &format!("{available}/withdraw")).await;
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    let html = page(&stack, &seller, "/listings").await;
    assert!(
        element_text(&html, "flash").is_some_and(|m| m.contains("withdrawn already")),
        "{html}"
    );
    let taken = post_form(&stack, &seller, &format!("{reserved}/withdraw")).await;
    assert_eq!(taken.status(), StatusCode::SEE_OTHER);
    let html = page(&stack, &seller, "/listings").await;
    assert!(
        element_text(&html, "flash").is_some_and(|m| m.starts_with("The ticket was not withdrawn")),
        "{html}"
    );
    assert_eq!(listing_state(&html, &reserved).as_deref(), Some("Reserved"));
    // A reopened withdraw address leads nowhere new: the question again, or why not.
    let reopened = seller
        .get(stack.url(&format!("{available}/withdraw")))
        .send()
        .await
        .unwrap();
    assert_eq!(reopened.status(), StatusCode::NOT_FOUND);
}

/// The paths of the `?before=` / `?after=` links on a list's page.
fn pager_link(html: &str, id: &str) -> Option<String> {
    let at = html.find(&format!("id=\"{id}\""))?;
    let tag_start = html[..at].rfind("<a ")?;
    attribute_values(&html[tag_start..at], "href")
        .first()
        .map(|h| (*h).to_owned())
}

/// The titles listed on a page, in order.
fn titles(html: &str) -> Vec<String> {
    html.match_indices(">Paged ")
        .filter_map(|(i, _)| {
            let rest = &html[i + 1..];
            let end = rest.find('<')?;
            Some(rest[..end].trim().to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_ticket_list_and_the_listings_page_back_to_newer_tickets_as_well_as_on_to_older() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let seller = signed_up(&stack, "pager@example.com").await;
    for i in 1..=45 {
        let listed = seller
            .post(stack.url("/api/tickets"))
            .json(&serde_json::json!({"title": format!("Paged {i:02}"), "price": 5}))
            .send()
            .await
            .unwrap();
        assert_eq!(listed.status(), StatusCode::CREATED);
    }
    let expected = |from: u32, to: u32| -> Vec<String> {
        (to..=from).rev().map(|i| format!("Paged {i:02}")).collect()
    };

    // Twenty tickets a page on sale, ten listings a page (each row has its buttons).
    for (base, browser, size) in [("/", client(), 20), ("/listings", seller.clone(), 10)] {
        let page_of = |n: i64| {
            let from = 45 - size * n;
            expected(from as u32, (from - size + 1).max(1) as u32)
        };
        let first = page(&stack, &browser, base).await;
        assert_eq!(titles(&first), page_of(0), "{base}");
        assert_eq!(
            pager_link(&first, "previous-page"),
            None,
            "{base}: nothing newer"
        );
        let second_path = pager_link(&first, "next-page").expect("a next page");
        assert!(
            second_path.starts_with(&format!("{base}?before=")),
            "{second_path}"
        );
        let second = page(&stack, &browser, &second_path).await;
        assert_eq!(titles(&second), page_of(1), "{base}");
        let third_path = pager_link(&second, "next-page").expect("a third page");
        let third = page(&stack, &browser, &third_path).await;
        assert_eq!(titles(&third), page_of(2), "{base}");
        if size == 20 {
            assert_eq!(
                pager_link(&third, "next-page"),
                None,
                "{base}: nothing older"
            );
        }

        // Back: the third page's previous page is the second, and the second's the first
        // (which is the list's own address again).
        let back_path = pager_link(&third, "previous-page").expect("a previous page");
        assert!(
            back_path.starts_with(&format!("{base}?after=")),
            "{back_path}"
        );
        let back = page(&stack, &browser, &back_path).await;
        assert_eq!(titles(&back), page_of(1), "{base}: the second page again");
        assert!(pager_link(&back, "previous-page").is_some());
        let top_path = pager_link(&second, "previous-page").expect("a previous page");
        let top = browser.get(stack.url(&top_path)).send().await.unwrap();
        assert_eq!(top.status(), StatusCode::SEE_OTHER, "{top_path}");
        assert_eq!(top.headers()[header::LOCATION], base);
    }
}

// ---------------------------------------------------------------------------------------
// Events with many seats: the list and its search, an event's page, buying a seat, the
// organiser's forms and their events.

/// A moment `days` days from now, at 20:00 UTC.
fn days_ahead(days: i64) -> time::OffsetDateTime {
    (time::OffsetDateTime::now_utc() + time::Duration::days(days))
        .replace_time(time::macros::time!(20:00))
}

/// `at` as RFC 3339.
fn rfc3339(at: time::OffsetDateTime) -> String {
    at.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// `at` as a `datetime-local` value (its wall-clock date and time, to the minute).
fn local_value(at: time::OffsetDateTime) -> String {
    format!(
        "{}-{:02}-{:02}T{:02}:{:02}",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute()
    )
}

/// Creates an event through the API as `organiser` (signed in); `fields` add to or replace
/// a valid event's. Returns its page's path.
async fn api_event(
    stack: &Stack,
    organiser: &reqwest::Client,
    title: &str,
    fields: serde_json::Value,
) -> String {
    let mut body = serde_json::json!({
        "title": title,
        "venue": "Town Hall",
        "startsAt": rfc3339(days_ahead(30)),
        "price": 20,
        "seats": 50,
    });
    for (key, value) in fields.as_object().unwrap() {
        body[key] = value.clone();
    }
    let created = organiser
        .post(stack.url("/api/events"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED, "{title}");
    let event: serde_json::Value = created.json().await.unwrap();
    format!("/events/{}", event["id"].as_str().unwrap())
}

/// The event at a page's path, as the API shows it.
async fn api_event_json(stack: &Stack, event: &str) -> serde_json::Value {
    client()
        .get(stack.url(&format!("/api{event}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Posts the event page's "Buy a seat" form as `buyer`.
async fn buy_seat(stack: &Stack, buyer: &reqwest::Client, event: &str) -> reqwest::Response {
    post_form(stack, buyer, &format!("{event}/buy")).await
}

/// Where a `303` leads.
fn location(response: &reqwest::Response) -> String {
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "{}",
        response.url()
    );
    response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A pager link's address as the browser follows it (the HTML writes `&` as `&#38;`).
fn link(html: &str, id: &str) -> Option<String> {
    pager_link(html, id).map(|h| h.replace("&#38;", "&"))
}

/// The event titles a list shows, in order.
fn event_titles(html: &str) -> Vec<String> {
    html.match_indices("class=\"ticket-title\">")
        .map(|(i, m)| {
            let start = i + m.len();
            html[start..start + html[start..].find('<').unwrap()].to_owned()
        })
        .collect()
}

#[tokio::test]
async fn the_events_page_lists_upcoming_events_soonest_first_finds_them_by_their_words_and_pages_on()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let organiser = signed_up(&stack, "events-list@example.com").await;
    // Twelve evenings, created latest first, so the order shown is the start's.
    for day in (1..=12).rev() {
        api_event(
            &stack,
            &organiser,
            &format!("Evening {day:02}"),
            serde_json::json!({"startsAt": rfc3339(days_ahead(day)), "seats": 10 + day}),
        )
        .await;
    }
    let jazz = api_event(
        &stack,
        &organiser,
        "Jazz Night",
        serde_json::json!({"venue": "Blue Note Hall", "description": "A trio plays late.",
                           "startsAt": rfc3339(days_ahead(40)), "seats": 1, "price": "12.50"}),
    )
    .await;

    // Anyone finds the list from the header: ten a page, soonest first, each with its start
    // (in UTC, inside <time>), venue, price and seats left.
    let anonymous = client();
    let home = page(&stack, &anonymous, "/").await;
    assert!(
        home.contains("<a href=\"/events\" id=\"events-link\">Events</a>"),
        "{home}"
    );
    let first = page(&stack, &anonymous, "/events").await;
    let expected: Vec<String> = (1..=10).map(|d| format!("Evening {d:02}")).collect();
    assert_eq!(event_titles(&first), expected, "{first}");
    let day1 = days_ahead(1);
    assert!(
        first.contains(&format!(
            "<time datetime=\"{}\" data-local=\"day\">",
            rfc3339(day1)
        )),
        "{first}"
    );
    assert!(first.contains("· Town Hall</span>"), "{first}");
    assert!(first.contains(">11 seats left</span>"), "{first}");
    assert!(first.contains("<span class=\"price\">$20.00</span>"));
    assert_eq!(link(&first, "first-page"), None);
    let next = link(&first, "next-page").expect("a next page");
    assert!(next.starts_with("/events?after="), "{next}");
    let second = page(&stack, &anonymous, &next).await;
    assert_eq!(
        event_titles(&second),
        ["Evening 11", "Evening 12", "Jazz Night"],
        "{second}"
    );
    assert_eq!(link(&second, "next-page"), None, "nothing further");
    assert_eq!(link(&second, "first-page").as_deref(), Some("/events"));

    // Searching: a title's word, a venue's two words (as a GET form sends them), a
    // description's word, in any case; the box keeps what was typed.
    for (q, what) in [
        ("jazz", "title"),
        ("Blue+Note", "venue"),
        ("TRIO", "description"),
        ("blue%2C+note%21", "venue, with punctuation"),
    ] {
        let found = page(&stack, &anonymous, &format!("/events?q={q}")).await;
        assert_eq!(event_titles(&found), ["Jazz Night"], "{what}: {found}");
        assert!(
            element_text(&found, "search-summary").is_some_and(|s| s.contains("matching")),
            "{what}"
        );
    }
    let kept = page(&stack, &anonymous, "/events?q=Blue+Note").await;
    assert!(kept.contains("value=\"Blue Note\""), "{kept}");
    let none = page(&stack, &anonymous, "/events?q=opera").await;
    assert!(event_titles(&none).is_empty());
    assert!(
        element_text(&none, "empty").is_some_and(|s| s.contains("No upcoming event matches")),
        "{none}"
    );
    // A search over more than a page pages on within the search.
    let evenings = page(&stack, &anonymous, "/events?q=evening").await;
    assert_eq!(event_titles(&evenings), expected);
    let more = link(&evenings, "next-page").expect("a second page of evenings");
    assert!(more.starts_with("/events?q=evening&after="), "{more}");
    let more = page(&stack, &anonymous, &more).await;
    assert_eq!(event_titles(&more), ["Evening 11", "Evening 12"], "{more}");
    assert_eq!(
        link(&more, "first-page").as_deref(),
        Some("/events?q=evening")
    );

    // A search the API refuses is said next to the box; an address naming no page is a 404.
    let long = client()
        .get(stack.url(&format!("/events?q={}", "a".repeat(201))))
        .send()
        .await
        .unwrap();
    let html = layout_page(long, StatusCode::BAD_REQUEST, None).await;
    assert!(error_text(&html, "search-error").is_some(), "{html}");
    for path in ["/events?after=not-an-id", "/events?q=a&q=b"] {
        layout_page(
            client().get(stack.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            None,
        )
        .await;
    }

    // Once its one seat is taken, Jazz Night reads "Sold out" in the list.
    let buyer = signed_up(&stack, "events-list-buyer@example.com").await;
    location(&buy_seat(&stack, &buyer, &jazz).await);
    let id = jazz.trim_start_matches("/events/");
    page_until(&stack, &anonymous, &next, "Jazz Night sold out", |h| {
        element_text(h, &format!("seats-{id}")).as_deref() == Some("Sold out")
    })
    .await;
}

#[tokio::test]
async fn creating_an_event_without_script_takes_its_time_as_utc_its_price_as_typed_and_names_each_refused_field()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    for path in ["/events/new", "/events/mine"] {
        let response = client().get(stack.url(path)).send().await.unwrap();
        assert_eq!(location(&response), format!("/signin?next={path}"));
    }
    let organiser = signed_up(&stack, "creator@example.com").await;
    let form = page(&stack, &organiser, "/events/new").await;
    assert!(form.contains("<form method=\"post\" action=\"/events/new\""));
    assert!(form.contains("type=\"datetime-local\""), "{form}");
    assert!(form.contains("name=\"utcOffset\" type=\"hidden\" value=\"\""));
    assert!(
        element_text(&form, "zone-note").is_some_and(|n| n.starts_with("In UTC")),
        "without script the form says its time is UTC: {form}"
    );
    assert!(
        form.contains("<option selected>4</option>"),
        "four per buyer"
    );
    assert!(
        form.contains("<script src=\"/assets/event-form.js\" defer></script>"),
        "{form}"
    );
    assert_eq!(inline_scripts(&form), Vec::<String>::new());

    // A form sent from another site creates nothing.
    let forged = organiser
        .post(stack.url("/events/new"))
        .header(header::ORIGIN, "http://evil.example")
        .form(&[
            ("title", "Forged Fest"),
            ("venue", "Nowhere"),
            ("startsAt", &local_value(days_ahead(5))),
            ("price", "10"),
            ("seats", "10"),
        ])
        .send()
        .await
        .unwrap();
    layout_page(forged, StatusCode::FORBIDDEN, Some("creator@example.com")).await;

    // Everything wrong at once: each message under its field, what was typed kept, nothing
    // created.
    let refused = organiser
        .post(stack.url("/events/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", " "),
            ("venue", ""),
            ("startsAt", "2020-01-01T10:00"),
            ("utcOffset", ""),
            ("description", ""),
            ("price", "twenty"),
            ("seats", "0"),
            ("maxPerBuyer", "4"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    for id in ["title-error", "venue-error", "seats-error"] {
        assert!(error_text(&html, id).is_some(), "{id}: {html}");
    }
    assert!(
        error_text(&html, "starts-at-error").is_some_and(|m| m.contains("future")),
        "{html}"
    );
    assert_eq!(
        error_text(&html, "price-error").as_deref(),
        Some("Enter the price as a number of dollars, like 25, 25.50 or $25,50.")
    );
    assert!(html.contains("value=\"twenty\"") && html.contains("value=\"0\""));
    assert!(html.contains("value=\"2020-01-01T10:00\""), "{html}");
    let refused = organiser
        .post(stack.url("/events/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", "Typo Fest"),
            ("venue", "Hall"),
            ("startsAt", "next friday"),
            ("price", "10"),
            ("seats", "10"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert_eq!(
        error_text(&html, "starts-at-error").as_deref(),
        Some("Enter the date and time the event starts, like 2027-03-10 20:00.")
    );
    assert_eq!(error_text(&html, "title-error"), None, "{html}");
    let mine: serde_json::Value = organiser
        .get(stack.url("/api/events/mine"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine, serde_json::json!([]), "nothing was created");

    // Without the script's offset the typed time is UTC; the price and seats as people type
    // them; line breaks kept and markup escaped on the event's page.
    let at = days_ahead(20);
    let created = organiser
        .post(stack.url("/events/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", "Harbour Lights"),
            ("venue", "Pier 4"),
            ("startsAt", &local_value(at)),
            ("utcOffset", ""),
            ("description", "Doors 19:00\r\n<b>Bring a coat</b>"),
            ("price", "$25,50"),
            ("seats", "1,000"),
            ("maxPerBuyer", "2"),
        ])
        .send()
        .await
        .unwrap();
    let event = location(&created);
    assert!(flash_set(&created).is_some_and(|c| c.starts_with("flash=ok.event;")));
    let json = api_event_json(&stack, &event).await;
    assert_eq!(json["startsAt"], rfc3339(at));
    assert_eq!(
        (&json["price"], &json["seats"], &json["maxPerBuyer"]),
        (
            &serde_json::json!(25.5),
            &serde_json::json!(1000),
            &serde_json::json!(2)
        )
    );
    let html = page(&stack, &organiser, &event).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Event created. Its seats are on sale.")
    );
    assert_eq!(
        element_text(&html, "event-title").as_deref(),
        Some("Harbour Lights")
    );
    assert_eq!(
        element_text(&html, "event-venue").as_deref(),
        Some("Pier 4")
    );
    assert_eq!(
        element_text(&html, "event-price").as_deref(),
        Some("$25.50")
    );
    assert_eq!(
        element_text(&html, "seats-left").as_deref(),
        Some("1000 of 1000 left")
    );
    assert!(
        html.contains(&format!("<time datetime=\"{}\"", rfc3339(at))),
        "{html}"
    );
    assert!(
        html.contains(
            "<p class=\"description\" id=\"event-description\">Doors 19:00\n&#60;b&#62;Bring a coat&#60;/b&#62;</p>"
        ),
        "{html}"
    );
    assert!(
        element_text(&html, "organiser").is_some_and(|s| s.contains("0 of 1000 seats sold")),
        "{html}"
    );
    assert!(html.contains(&format!("href=\"{event}/edit\" id=\"edit\"")));
    assert!(!html.contains("/buy\""), "the organiser is offered no seat");

    // With the script's offset (India, UTC+5:30), the typed time is India's.
    let created = organiser
        .post(stack.url("/events/new"))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", "Monsoon Ragas"),
            ("venue", "Bandra"),
            ("startsAt", &local_value(at)),
            ("utcOffset", "330"),
            ("price", "15"),
            ("seats", "30"),
        ])
        .send()
        .await
        .unwrap();
    let event = location(&created);
    let json = api_event_json(&stack, &event).await;
    assert_eq!(json["startsAt"], rfc3339(at - time::Duration::minutes(330)));
    assert_eq!(json["maxPerBuyer"], 4, "the API's default");
}

#[tokio::test]
async fn buying_a_seat_without_script_holds_the_best_one_says_which_and_stops_at_the_limit_and_when_sold_out()
 {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let organiser = signed_up(&stack, "seats-organiser@example.com").await;
    let event = api_event(
        &stack,
        &organiser,
        "Quartet Evening",
        serde_json::json!({"seats": 3, "maxPerBuyer": 2, "price": 30}),
    )
    .await;
    let event_id = event.trim_start_matches("/events/").to_owned();

    // Signed out: the way to buy is signing in first, and back.
    let html = page(&stack, &client(), &event).await;
    assert!(
        html.contains(&format!(
            "href=\"/signin?next={event}\" id=\"buy\">Sign in to buy</a>"
        )),
        "{html}"
    );
    let anonymous = client()
        .post(stack.url(&format!("{event}/buy")))
        .header(header::ORIGIN, stack.origin())
        .header(header::REFERER, stack.url(&event))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&anonymous), format!("/signin?next={event}"));

    // The first buyer gets seat 1, then seat 2, each on its order's page with a message.
    let alice = signed_up(&stack, "seats-alice@example.com").await;
    let html = page(&stack, &alice, &event).await;
    assert!(
        html.contains(&format!("<form method=\"post\" action=\"{event}/buy\">")),
        "{html}"
    );
    let mut alices = Vec::new();
    for seat in ["1", "2"] {
        let bought = buy_seat(&stack, &alice, &event).await;
        assert!(flash_set(&bought).is_some_and(|c| c.starts_with("flash=ok.seat;")));
        let order = location(&bought);
        assert!(order.starts_with("/orders/"), "{order}");
        let html = page(&stack, &alice, &order).await;
        assert_eq!(
            element_text(&html, "flash").as_deref(),
            Some("Your seat is held. Pay before the time runs out to keep it.")
        );
        assert_eq!(
            element_text(&html, "seat"),
            Some(format!("Seat {seat}")),
            "{html}"
        );
        assert!(
            html.contains(&format!("<h1><a href=\"{event}\">Quartet Evening</a></h1>")),
            "{html}"
        );
        assert!(html.contains("id=\"pay\""), "payable as any order");
        alices.push(order);
    }

    // At the limit, the event's page says so instead of offering a third; a stale form
    // comes back to it with the API's reason.
    let html = page(&stack, &alice, &event).await;
    assert_eq!(
        element_text(&html, "event-state").as_deref(),
        Some("You hold 2 seats of this event, the most one buyer may have.")
    );
    assert!(!html.contains("id=\"buy\""), "{html}");
    let my_seats = element_text(&html, "my-seats").unwrap_or_default();
    assert!(
        html.contains(&format!("href=\"{}\">Seat 1</a>", alices[0]))
            && html.contains(&format!("href=\"{}\">Seat 2</a>", alices[1])),
        "{my_seats}: {html}"
    );
    let refused = buy_seat(&stack, &alice, &event).await;
    assert_eq!(location(&refused), event);
    let html = page(&stack, &alice, &event).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("You already hold 2 seats of this event, the most one buyer may have.")
    );

    // My orders: each seat, with the event's page.
    let list = page(&stack, &alice, "/orders").await;
    for (order, seat) in alices.iter().zip(["Seat 1", "Seat 2"]) {
        let id = order.trim_start_matches("/orders/");
        assert_eq!(
            element_text(&list, &format!("seat-{id}")).as_deref(),
            Some(seat),
            "{list}"
        );
        assert!(list.contains(&format!(
            "href=\"{order}\" class=\"ticket-title\">Quartet Evening</a>"
        )));
    }
    assert_eq!(
        list.matches(&format!("<a href=\"{event}\">Event page</a>"))
            .count(),
        2,
        "{list}"
    );

    // The last seat goes to another buyer; then the event is sold out for everyone.
    let bob = signed_up(&stack, "seats-bob@example.com").await;
    let bobs = location(&buy_seat(&stack, &bob, &event).await);
    assert_eq!(
        element_text(&page(&stack, &bob, &bobs).await, "seat").as_deref(),
        Some("Seat 3")
    );
    let carol = signed_up(&stack, "seats-carol@example.com").await;
    let html = page_until(&stack, &carol, &event, "sold out", |h| {
        element_text(h, "seats-left").as_deref() == Some("Sold out")
    })
    .await;
    assert_eq!(
        element_text(&html, "event-state").as_deref(),
        Some("Sold out: every seat is taken.")
    );
    assert!(!html.contains("id=\"buy\""));
    let refused = buy_seat(&stack, &carol, &event).await;
    assert_eq!(location(&refused), event);
    let html = page(&stack, &carol, &event).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("Sold out: every seat of this event is taken.")
    );
    let mine = page(&stack, &organiser, "/events/mine").await;
    assert_eq!(
        element_text(&mine, &format!("sold-{event_id}")).as_deref(),
        Some("3 of 3 sold"),
        "{mine}"
    );

    // Alice lets seat 1 go: the best seat is seat 1 again, and Carol gets it.
    let cancelled = post_form(&stack, &alice, &format!("{}/cancel", alices[0])).await;
    assert_eq!(cancelled.status(), StatusCode::SEE_OTHER);
    page_until(&stack, &carol, &event, "a seat free again", |h| {
        element_text(h, "seats-left").as_deref() == Some("1 of 3 left")
    })
    .await;
    let carols = location(&buy_seat(&stack, &carol, &event).await);
    assert_eq!(
        element_text(&page(&stack, &carol, &carols).await, "seat").as_deref(),
        Some("Seat 1")
    );
}

#[tokio::test]
async fn the_organiser_edits_an_event_and_reads_the_seats_sold_of_each_of_their_events() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let organiser = signed_up(&stack, "editor@example.com").await;
    let html = page(&stack, &organiser, "/events/mine").await;
    assert!(
        element_text(&html, "empty").is_some_and(|s| s.contains("not created any events")),
        "{html}"
    );
    assert!(html.contains("href=\"/events/mine\" id=\"my-events-link\""));
    let at = days_ahead(12);
    let older = api_event(
        &stack,
        &organiser,
        "Spring Gala",
        serde_json::json!({"startsAt": rfc3339(at), "seats": 4, "description": "Black tie."}),
    )
    .await;
    let newer = api_event(&stack, &organiser, "Summer Fair", serde_json::json!({})).await;
    let buyer = signed_up(&stack, "editor-buyer@example.com").await;
    location(&buy_seat(&stack, &buyer, &older).await);

    // Newest first, each with its seats sold and a link to edit it.
    let id = |e: &str| e.trim_start_matches("/events/").to_owned();
    let html = page_until(&stack, &organiser, "/events/mine", "the seat sold", |h| {
        element_text(h, &format!("sold-{}", id(&older))).as_deref() == Some("1 of 4 sold")
    })
    .await;
    assert_eq!(event_titles(&html), ["Summer Fair", "Spring Gala"]);
    assert_eq!(
        element_text(&html, &format!("sold-{}", id(&newer))).as_deref(),
        Some("0 of 50 sold")
    );
    assert!(html.contains(&format!(
        "href=\"{older}/edit\" aria-label=\"Edit Spring Gala\""
    )));
    for path in [
        "/events/mine?page=2",
        "/events/mine?page=0",
        "/events/mine?page=x",
    ] {
        layout_page(
            organiser.get(stack.url(path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            Some("editor@example.com"),
        )
        .await;
    }

    // The edit form: the start in UTC, marked for the script; the fixed fields as facts.
    let form = page(&stack, &organiser, &format!("{older}/edit")).await;
    assert!(
        form.contains(&format!("value=\"{}\" data-utc required", local_value(at))),
        "{form}"
    );
    assert!(form.contains("value=\"Spring Gala\""));
    assert!(form.contains(">Black tie.</textarea>"), "{form}");
    assert!(element_text(&form, "fixed").is_some(), "{form}");
    assert!(!form.contains("name=\"price\""), "the price cannot change");

    // Someone else: not theirs to edit, by the form or by posting.
    let stranger = signed_up(&stack, "editor-stranger@example.com").await;
    let html = layout_page(
        stranger
            .get(stack.url(&format!("{older}/edit")))
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
        Some("editor-stranger@example.com"),
    )
    .await;
    assert!(html.contains("Only the organiser"), "{html}");
    let forged = stranger
        .post(stack.url(&format!("{older}/edit")))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", "Mine now"),
            ("venue", "Here"),
            ("startsAt", &local_value(at)),
        ])
        .send()
        .await
        .unwrap();
    layout_page(
        forged,
        StatusCode::FORBIDDEN,
        Some("editor-stranger@example.com"),
    )
    .await;
    let html = page(&stack, &stranger, &older).await;
    assert!(!html.contains("id=\"edit\""), "{html}");
    let anonymous = client()
        .get(stack.url(&format!("{older}/edit")))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&anonymous), format!("/signin?next={older}/edit"));

    // A refused edit names the field and keeps what was typed.
    let refused = organiser
        .post(stack.url(&format!("{older}/edit")))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", ""),
            ("venue", "Grand Hall"),
            ("startsAt", &local_value(at)),
            ("utcOffset", "0"),
            ("description", "Black tie."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    let html = refused.text().await.unwrap();
    assert!(error_text(&html, "title-error").is_some(), "{html}");
    assert!(html.contains("value=\"Grand Hall\""));
    assert!(element_text(&html, "fixed").is_some(), "{html}");

    // Saved: a new title, venue and start, typed where the script found UTC-5.
    let saved = organiser
        .post(stack.url(&format!("{older}/edit")))
        .header(header::ORIGIN, stack.origin())
        .form(&[
            ("title", "Spring Gala, moved"),
            ("venue", "Grand Hall"),
            ("startsAt", &local_value(at)),
            ("utcOffset", "-300"),
            ("description", "Black tie.\r\nDinner at eight."),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&saved), older);
    let html = page(&stack, &organiser, &older).await;
    assert_eq!(element_text(&html, "flash").as_deref(), Some("Saved."));
    assert_eq!(
        element_text(&html, "event-title").as_deref(),
        Some("Spring Gala, moved")
    );
    assert_eq!(
        element_text(&html, "event-venue").as_deref(),
        Some("Grand Hall")
    );
    let json = api_event_json(&stack, &older).await;
    assert_eq!(json["startsAt"], rfc3339(at + time::Duration::hours(5)));
    assert_eq!(json["description"], "Black tie.\nDinner at eight.");
    assert_eq!(
        (&json["seats"], &json["price"]),
        (&serde_json::json!(4), &serde_json::json!(20))
    );
}

#[tokio::test]
async fn unknown_events_are_404_pages_and_a_started_event_sells_no_more_seats() {
    let stack = Stack::start(Duration::from_secs(900)).await;
    let visitor = signed_up(&stack, "events-lost@example.com").await;
    let unknown = format!("/events/{}", Uuid::now_v7());
    for path in [
        "/events/not-an-id".to_owned(),
        unknown.clone(),
        format!("{unknown}/edit"),
        "/events/42/edit".to_owned(),
    ] {
        let html = layout_page(
            visitor.get(stack.url(&path)).send().await.unwrap(),
            StatusCode::NOT_FOUND,
            Some("events-lost@example.com"),
        )
        .await;
        assert!(element_text(&html, "message").is_some(), "{path}: {html}");
    }
    layout_page(
        client().get(stack.url(&unknown)).send().await.unwrap(),
        StatusCode::NOT_FOUND,
        None,
    )
    .await;
    let html = layout_page(
        buy_seat(&stack, &visitor, &unknown).await,
        StatusCode::NOT_FOUND,
        Some("events-lost@example.com"),
    )
    .await;
    assert!(html.contains("Event not found"), "{html}");
    // A reopened /buy address is the event's page.
    let reopened = visitor
        .get(stack.url(&format!("{unknown}/buy")))
        .send()
        .await
        .unwrap();
    assert_eq!(location(&reopened), unknown);

    // An event starting in a moment: once it has, its page says so and buying is refused.
    let starts = time::OffsetDateTime::now_utc() + time::Duration::seconds(2);
    let soon = api_event(
        &stack,
        &visitor,
        "Right Now Show",
        serde_json::json!({"startsAt": rfc3339(starts.replace_nanosecond(0).unwrap() + time::Duration::seconds(1))}),
    )
    .await;
    let buyer = signed_up(&stack, "events-late@example.com").await;
    let html = page_until(&stack, &buyer, &soon, "the start", |h| {
        h.contains("id=\"event-state\">This event has started")
    })
    .await;
    assert!(!html.contains("id=\"buy\""), "{html}");
    let refused = buy_seat(&stack, &buyer, &soon).await;
    assert_eq!(location(&refused), soon);
    let html = page(&stack, &buyer, &soon).await;
    assert_eq!(
        element_text(&html, "flash").as_deref(),
        Some("The event has started: its seats are no longer sold.")
    );
    let mine = page(&stack, &visitor, "/events/mine").await;
    assert!(mine.contains(">Started</span>"), "{mine}");
    let list = page(&stack, &client(), "/events").await;
    assert!(
        !list.contains("Right Now Show"),
        "upcoming events only: {list}"
    );
}
