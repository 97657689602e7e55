//! The pages over plain HTTP against the whole platform in this process: redirects to
//! sign-in, the CSRF guard, the API's errors next to the right fields, and operators'
//! refunds.

mod support;

use std::time::Duration;

use reqwest::{StatusCode, header};
use support::{Stack, client};
use ticketing_common::testing::OPERATOR_EMAIL;

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

    for path in ["/", "/signin", "/orders", order.as_str(), "/tickets/new"] {
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

/// The path of the ticket an order page links to.
fn ticket_of(html: &str) -> String {
    let start = html.find("href=\"/tickets/").expect("a link to the ticket") + 6;
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_owned()
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
