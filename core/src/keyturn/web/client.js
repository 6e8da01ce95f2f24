/*
 * keyturn's browser helper, served at <base>/client.js (no dependencies, no build step).
 *
 *   <script src="/auth/client.js"></script>
 *   keyturn.getSession()                -> Promise<session | null>
 *   keyturn.signIn("github", {callbackUrl})
 *   keyturn.signOut({callbackUrl, redirect})
 *   keyturn.watchSession({onSession, interval})  -> stop()
 *
 * watchSession does what the refresh-token-rotation guide's useEffect does: whenever the
 * session says error === "RefreshAccessTokenError" (the refresh failed for good), it calls
 * signIn() for the session's provider. It re-reads the session every `interval` ms, just
 * after the access token expires (the server refreshes it on that read), and when the tab
 * becomes visible again. The session never holds the refresh token; it holds the access token
 * only if the server was configured with expose_access_token.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var base = script && script.src
    ? new URL(".", script.src).pathname.replace(/\/$/, "")
    : "/auth";

  function getJSON(path) {
    return fetch(base + path, {
      credentials: "same-origin",
      cache: "no-store",
      headers: { accept: "application/json" },
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("keyturn: " + path + " answered " + response.status);
      }
      return response.json();
    });
  }

  function getSession() {
    return getJSON("/session");
  }

  function signIn(provider, options) {
    // By default, back to this page: its path, query and fragment (the origin is the app's
    // own). The server keeps at most 1024 characters of it, dropping the fragment, then the
    // query, when it is longer.
    var here = window.location;
    var callbackUrl = (options && options.callbackUrl) ||
      here.pathname + here.search + here.hash;
    window.location.assign(
      base + "/signin/" + encodeURIComponent(provider) +
      "?callbackUrl=" + encodeURIComponent(callbackUrl)
    );
  }

  function signOut(options) {
    options = options || {};
    var callbackUrl = options.callbackUrl || "/";
    return getJSON("/csrf").then(function (csrf) {
      return fetch(base + "/signout", {
        method: "POST",
        credentials: "same-origin",
        headers: {
          accept: "application/json",
          "content-type": "application/json",
          "x-csrf-token": csrf.csrfToken,
        },
        body: JSON.stringify({ csrfToken: csrf.csrfToken, callbackUrl: callbackUrl }),
      });
    }).then(function (response) {
      if (!response.ok) {
        throw new Error("keyturn: sign-out answered " + response.status);
      }
      return response.json();
    }).then(function (result) {
      if (options.redirect !== false) {
        window.location.assign(result.url);
      }
      return result;
    });
  }

  function watchSession(options) {
    options = options || {};
    var interval = options.interval || 60000;
    var onSession = options.onSession || function () {};
    var onError = options.onError || function (error) { console.warn(error); };
    var timer = null;
    var stopped = false;

    function schedule(session) {
      if (stopped) {
        return;
      }
      var wait = interval;
      var expires = session && session.accessTokenExpires;
      if (typeof expires === "number") {
        // Read again just after the access token expires: that read refreshes it.
        var untilExpiry = expires * 1000 - Date.now() + 250;
        if (untilExpiry > 0 && untilExpiry < wait) {
          wait = untilExpiry;
        }
      }
      timer = window.setTimeout(check, wait);
    }

    function check() {
      window.clearTimeout(timer);
      getSession().then(function (session) {
        if (stopped) {
          return;
        }
        onSession(session);
        if (session && session.error === "RefreshAccessTokenError") {
          signIn(session.provider); // as the guide's useEffect: sign in again
          return;
        }
        schedule(session);
      }, function (error) {
        onError(error);
        schedule(null);
      });
    }

    function onVisible() {
      if (document.visibilityState === "visible") {
        check();
      }
    }

    document.addEventListener("visibilitychange", onVisible);
    check();
    return function stop() {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisible);
    };
  }

  window.keyturn = {
    basePath: base,
    getSession: getSession,
    signIn: signIn,
    signOut: signOut,
    watchSession: watchSession,
  };
})();
