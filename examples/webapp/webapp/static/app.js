/*
 * The example page. keyturn's client.js (loaded before this file) gives window.keyturn.
 *
 * keyturn.watchSession reads /auth/session now, just after each access token expires (the
 * server refreshes the token on that read) and when the tab becomes visible again; each
 * answer comes to render(). When a refresh failed for good (the grant was revoked at the
 * provider), the session says error === "RefreshAccessTokenError" and watchSession sends the
 * browser back through sign-in by itself.
 */
(function () {
  "use strict";

  var TICK_MS = 250;

  var shown = null; // the access token expiry on screen (epoch seconds)
  var refreshes = 0; // how many times this page saw it change

  function $(id) {
    return document.getElementById(id);
  }

  function setText(id, text) {
    $(id).textContent = text;
  }

  function clockTime(epochSeconds) {
    return new Date(epochSeconds * 1000).toLocaleTimeString();
  }

  function setState(state, status) {
    document.body.dataset.state = state;
    setText("status", status);
    $("signed-out").hidden = state !== "signed-out";
    $("signed-in").hidden = state === "signed-out" || state === "loading";
  }

  function render(session) {
    setText("document-cookie", JSON.stringify(document.cookie));
    if (!session) {
      shown = null;
      setState("signed-out", "Signed out.");
      return;
    }
    var user = session.user || {};
    setText("user-name", user.name || user.id || "(no name)");
    setText("user-email", user.email || "");
    setText("provider", session.provider);
    var image = $("user-image");
    if (user.image) {
      image.src = user.image;
      image.hidden = false;
    } else {
      image.removeAttribute("src");
      image.hidden = true;
    }

    var expires = session.accessTokenExpires;
    if (typeof expires === "number") {
      if (shown !== null && expires !== shown) {
        refreshes += 1;
      }
      shown = expires;
      var at = $("token-expires-at");
      at.dataset.epoch = String(expires);
      at.textContent = clockTime(expires) + " (" + expires + ")";
    } else {
      shown = null;
      delete $("token-expires-at").dataset.epoch;
      setText("token-expires-at", "never");
    }
    setText("refresh-count", String(refreshes));
    setText("session-expires", new Date(session.expires).toLocaleString());
    tick();

    var error = $("session-error");
    if (session.error) {
      error.hidden = false;
      error.textContent =
        "The access token could not be refreshed (" + session.error + "): signing in again...";
      setState("reauth", "Signing in again...");
    } else {
      error.hidden = true;
      error.textContent = "";
      setState("signed-in", "Signed in.");
    }
  }

  // The countdown to the access token's expiry, recomputed from the clock on every tick.
  function tick() {
    var left = $("token-expires-in");
    if (shown === null) {
      left.textContent = "";
      delete left.dataset.seconds;
      return;
    }
    var seconds = Math.max(0, Math.ceil(shown - Date.now() / 1000));
    left.dataset.seconds = String(seconds);
    left.textContent = seconds > 0 ? seconds + " s" : "expired, refreshing...";
  }

  function callApi() {
    var result = $("api-result");
    result.hidden = false;
    result.textContent = "Calling /api/profile...";
    delete result.dataset.status;
    fetch("/api/profile", {
      credentials: "same-origin",
      cache: "no-store",
      headers: { accept: "application/json" },
    })
      .then(function (response) {
        return response.text().then(function (text) {
          var body = text;
          try {
            body = JSON.stringify(JSON.parse(text), null, 2);
          } catch (ignored) {
            // not JSON: show it as it came
          }
          result.dataset.status = String(response.status);
          result.textContent = "HTTP " + response.status + "\n" + body;
        });
      })
      .catch(function (error) {
        result.dataset.status = "failed";
        result.textContent = String(error);
      })
      // The call may have refreshed the token on the server: show the session as it is now.
      .then(keyturn.getSession)
      .then(render, function () {});
  }

  function signIn(event) {
    keyturn.signIn(event.currentTarget.dataset.provider, { callbackUrl: "/" });
  }

  function signOut() {
    var button = $("sign-out");
    button.disabled = true;
    setText("status", "Signing out...");
    keyturn.signOut({ callbackUrl: "/" }).catch(function (error) {
      button.disabled = false;
      setText("status", "Sign-out failed: " + error.message);
    });
  }

  $("sign-in-github").addEventListener("click", signIn);
  $("sign-in-google").addEventListener("click", signIn);
  $("call-api").addEventListener("click", callApi);
  $("sign-out").addEventListener("click", signOut);
  window.setInterval(tick, TICK_MS);

  // Offer only the providers the server has.
  fetch("/auth/providers", { credentials: "same-origin" })
    .then(function (response) {
      return response.json();
    })
    .then(function (providers) {
      ["github", "google"].forEach(function (id) {
        $("sign-in-" + id).hidden = !providers[id];
      });
    }, function () {});

  keyturn.watchSession({
    onSession: render,
    interval: 30000,
    onError: function (error) {
      setText("status", "Could not read the session: " + error.message);
    },
  });
})();
