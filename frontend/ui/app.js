// Todo Chatbot UI: plain JS, no build step. The session lives in an HttpOnly cookie that this
// script never sees; every call goes to the same origin and the server adds the bearer token.
'use strict';

(function () {
  const $ = (id) => document.getElementById(id);
  const SIGNED_IN_KEY = 'todo_signed_in';
  const conversationKey = (user) => 'todo_conversation:' + user.id;

  const state = {
    user: null,
    mode: 'login',          // or 'register'
    filter: 'pending',
    conversationId: null,
    tasksRequest: 0,        // ignores answers to outdated task-list requests
    tasksNext: null,        // cursor of the next task page (X-Next-Cursor), null at the end
    messages: [],           // the loaded part of the conversation, oldest first
    messagesNext: null,     // cursor of earlier messages
    chatBusy: false,
  };
  const TASK_PAGE = 50;
  const MAX_PAGE = 200;     // the API's largest page
  const MESSAGE_PAGE = 100;

  // ---------- HTTP ----------

  class ApiError extends Error {
    constructor(status, code, message) {
      super(message);
      this.status = status;
      this.code = code;
    }
  }

  // Lists come in pages: the body is the array, the next page's cursor is in X-Next-Cursor.
  async function apiPage(path) {
    const sep = path.includes('?') ? '&' : '?';
    let next = null;
    const items = await api('GET', path, undefined, (resp) => { next = resp.headers.get('X-Next-Cursor'); });
    return { items: items || [], next, more: (cursor) => path + sep + 'cursor=' + encodeURIComponent(cursor) };
  }

  async function authedPage(path) {
    try {
      return await apiPage(path);
    } catch (e) {
      if (e.status === 401) sessionExpired();
      throw e;
    }
  }

  async function api(method, path, body, onResponse) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, 'network', 'Cannot reach the server. Check your connection.');
    }
    if (onResponse) onResponse(resp);
    if (resp.status === 204) return null;
    let data = null;
    const text = await resp.text();
    if (text) {
      try { data = JSON.parse(text); } catch (e) { data = null; }
    }
    if (!resp.ok) {
      const err = (data && data.error) || {};
      throw new ApiError(resp.status, err.code || 'http_' + resp.status, describe(resp.status, err));
    }
    return data;
  }

  function describe(status, err) {
    if (err.code === 'backend_unavailable') return 'The service is unavailable right now.';
    if (err.code === 'backend_timeout') return 'The service took too long to answer.';
    if (err.message) return err.message;
    return 'Request failed (HTTP ' + status + ').';
  }

  // Wraps a call made while signed in: a 401 means the session is gone.
  async function authed(method, path, body) {
    try {
      return await api(method, path, body);
    } catch (e) {
      if (e.status === 401) sessionExpired();
      throw e;
    }
  }

  // ---------- banner ----------

  let bannerRetry = null;
  function showBanner(text, retry) {
    $('banner-text').textContent = text;
    bannerRetry = retry || null;
    $('banner-retry').hidden = !retry;
    $('banner').hidden = false;
  }
  function hideBanner() { $('banner').hidden = true; bannerRetry = null; }

  // ---------- views ----------

  function showAuth(message) {
    state.user = null;
    $('boot').hidden = true;
    $('app-view').hidden = true;
    $('account').hidden = true;
    $('auth-view').hidden = false;
    setAuthMode(state.mode);
    const errorBox = $('auth-error');
    errorBox.textContent = message || '';
    errorBox.hidden = !message;
    $('auth-email').focus();
  }

  function showApp(user) {
    state.user = user;
    localStorage.setItem(SIGNED_IN_KEY, '1');
    $('boot').hidden = true;
    $('auth-view').hidden = true;
    $('app-view').hidden = false;
    $('account').hidden = false;
    $('user-email').textContent = user.email;
    hideBanner();
    const stored = localStorage.getItem(conversationKey(user));
    state.conversationId = stored ? Number(stored) : null;
    state.messages = [];
    state.messagesNext = null;
    clearChat();
    loadConversation();
    loadTasks();
    $('chat-input').focus();
  }

  function sessionExpired() {
    if (!state.user) return;
    localStorage.removeItem(SIGNED_IN_KEY);
    state.mode = 'login';
    showAuth('Your session expired. Sign in again.');
  }

  function setAuthMode(mode) {
    state.mode = mode;
    const register = mode === 'register';
    $('auth-title').textContent = register ? 'Create an account' : 'Sign in';
    $('auth-submit').textContent = register ? 'Create account' : 'Sign in';
    $('auth-switch-text').textContent = register ? 'Already have an account?' : 'No account yet?';
    $('auth-switch').textContent = register ? 'Sign in instead' : 'Create an account';
    $('auth-password').setAttribute('autocomplete', register ? 'new-password' : 'current-password');
    // The form also works without this script (a plain POST answered by a redirect).
    $('auth-form').action = register ? '/api/auth/register' : '/api/auth/login';
  }

  // A sign-in posted as a plain form (before this script ran) comes back as /#auth-error=<code>.
  const FORM_ERRORS = {
    unauthorized: 'Wrong email or password.',
    conflict: 'An account with this email already exists.',
    validation_failed: 'Check your email and password (at least 8 characters).',
    rate_limited: 'Too many attempts. Wait a minute and try again.',
    payload_too_large: 'That was too long.',
  };
  function takeFormError() {
    const m = /^#auth-error=([a-z_]+)$/.exec(location.hash);
    if (!m) return '';
    history.replaceState(null, '', location.pathname);
    return FORM_ERRORS[m[1]] || 'Signing in failed. Try again.';
  }

  // ---------- session ----------

  async function boot() {
    const formError = takeFormError();
    if (formError) {
      showAuth(formError);
      return;
    }
    try {
      const me = await api('GET', '/api/auth/me');
      showApp(me);
    } catch (e) {
      if (e.status === 401) {
        const wasSignedIn = localStorage.getItem(SIGNED_IN_KEY) === '1';
        localStorage.removeItem(SIGNED_IN_KEY);
        showAuth(wasSignedIn ? 'Your session expired. Sign in again.' : '');
      } else {
        $('boot').hidden = true;
        showBanner(e.message, () => { hideBanner(); $('boot').hidden = false; boot(); });
      }
    }
  }

  async function submitAuth(event) {
    event.preventDefault();
    const email = $('auth-email').value.trim();
    const password = $('auth-password').value;
    const errorBox = $('auth-error');
    if (!email || !password) {
      errorBox.textContent = 'Enter your email and password.';
      errorBox.hidden = false;
      return;
    }
    const button = $('auth-submit');
    button.disabled = true;
    errorBox.hidden = true;
    try {
      const path = state.mode === 'register' ? '/api/auth/register' : '/api/auth/login';
      const data = await api('POST', path, { email, password });
      $('auth-password').value = '';
      showApp(data.user);
    } catch (e) {
      errorBox.textContent = e.status === 401 ? 'Wrong email or password.'
        : e.status === 429 ? FORM_ERRORS.rate_limited : e.message;
      errorBox.hidden = false;
    } finally {
      button.disabled = false;
    }
  }

  async function signOut() {
    try { await api('POST', '/api/auth/logout'); } catch (e) { /* the cookie is cleared server-side; nothing to retry */ }
    localStorage.removeItem(SIGNED_IN_KEY);
    state.mode = 'login';
    clearChat();
    state.messages = [];
    state.messagesNext = null;
    $('task-list').replaceChildren();
    state.tasksNext = null;
    $('tasks-more').hidden = true;
    showAuth('');
  }

  // ---------- chat ----------

  function clearChat() {
    $('chat-log').replaceChildren();
    $('chat-empty').hidden = false;
    $('chat-earlier').hidden = true;
  }

  function appendMessage(role, text, actions) {
    const log = $('chat-log');
    const div = document.createElement('div');
    div.className = 'msg msg-' + role;
    div.dataset.testid = { user: 'chat-user', assistant: 'chat-reply' }[role] || 'chat-error';
    div.dataset.role = role;
    const p = document.createElement('div');
    p.textContent = text;
    div.append(p);
    if (actions && actions.length) div.append(renderActions(actions));
    log.append(div);
    $('chat-empty').hidden = true;
    log.scrollTop = log.scrollHeight;
    return div;
  }

  function renderActions(actions) {
    const ul = document.createElement('ul');
    ul.className = 'actions';
    ul.dataset.testid = 'chat-actions';
    ul.setAttribute('aria-label', 'Actions taken');
    for (const a of actions) {
      const li = document.createElement('li');
      li.className = 'action';
      li.dataset.testid = 'chat-action';
      const failed = a.result && typeof a.result === 'object' && (a.result.error || a.result.ok === false);
      if (failed) li.classList.add('failed');
      li.textContent = (failed ? '✗ ' : '✓ ') + actionLabel(a);
      ul.append(li);
    }
    return ul;
  }

  function actionLabel(a) {
    const args = a.arguments || {};
    const name = String(a.tool || a.tool_name || 'action').replace(/_/g, ' ');
    const result = a.result && typeof a.result === 'object' && !Array.isArray(a.result) ? a.result : {};
    const detail = args.title || result.title || args.task_id || args.id || args.status || '';
    return detail ? name + ': ' + detail : name;
  }

  async function loadConversation() {
    const id = state.conversationId;
    if (!id) return;
    try {
      const page = await authedPage('/api/conversations/' + id + '/messages?limit=' + MESSAGE_PAGE);
      if (state.conversationId !== id) return;
      state.messages = page.items;
      state.messagesNext = page.next ? page.more(page.next) : null;
      renderConversation();
    } catch (e) {
      if (e.status === 404) {
        forgetConversation();
      } else if (e.status !== 401) {
        const div = appendMessage('error', 'Could not load the conversation: ' + e.message);
        addRetry(div, loadConversation);
      }
    }
  }

  async function loadEarlierMessages() {
    const id = state.conversationId;
    const path = state.messagesNext;
    if (!id || !path) return;
    const button = $('chat-earlier');
    button.disabled = true;
    try {
      const page = await authedPage(path);
      if (state.conversationId !== id) return;
      state.messages = page.items.concat(state.messages);
      state.messagesNext = page.next ? page.more(page.next) : null;
      const log = $('chat-log');
      const fromBottom = log.scrollHeight - log.scrollTop;
      renderConversation();
      log.scrollTop = log.scrollHeight - fromBottom;
    } catch (e) {
      if (e.status !== 401) showBanner('Could not load earlier messages: ' + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function renderConversation() {
    clearChat();
    let lastAssistant = null;
    let pendingTools = [];
    for (const m of state.messages) {
      if (m.role === 'tool') {
        // Stored tool messages hold {"arguments", "result"} as JSON text.
        const stored = parseMaybe(m.content);
        const isRecord = stored && typeof stored === 'object' && 'result' in stored;
        pendingTools.push({
          tool: m.tool_name,
          arguments: isRecord ? stored.arguments || {} : {},
          result: isRecord ? stored.result : stored,
        });
        continue;
      }
      if (m.role === 'assistant') {
        lastAssistant = appendMessage('assistant', m.content, pendingTools);
        pendingTools = [];
      } else {
        appendMessage('user', m.content);
        pendingTools = [];
      }
    }
    if (pendingTools.length && lastAssistant) lastAssistant.append(renderActions(pendingTools));
    $('chat-earlier').hidden = !state.messagesNext;
  }

  function parseMaybe(text) {
    try { return JSON.parse(text); } catch (e) { return text; }
  }

  function forgetConversation() {
    state.conversationId = null;
    state.messages = [];
    state.messagesNext = null;
    if (state.user) localStorage.removeItem(conversationKey(state.user));
    clearChat();
  }

  function addRetry(div, fn) {
    const b = document.createElement('button');
    b.type = 'button';
    b.className = 'btn btn-small';
    b.textContent = 'Retry';
    b.dataset.testid = 'chat-retry';
    b.addEventListener('click', () => { div.remove(); fn(); });
    div.append(b);
  }

  async function sendChat(text) {
    if (state.chatBusy) return;
    state.chatBusy = true;
    $('chat-send').disabled = true;
    const pending = appendMessage('assistant', 'Thinking…');
    pending.classList.add('msg-pending');
    pending.dataset.testid = 'chat-pending';
    try {
      const body = { message: text };
      if (state.conversationId) body.conversation_id = state.conversationId;
      let data;
      try {
        data = await authed('POST', '/api/chat', body);
      } catch (e) {
        // The stored conversation is gone (deleted elsewhere): start a new one rather than fail.
        if (e.status !== 404 || !body.conversation_id) throw e;
        state.conversationId = null;
        localStorage.removeItem(conversationKey(state.user));
        delete body.conversation_id;
        data = await authed('POST', '/api/chat', body);
      }
      pending.remove();
      if (state.conversationId !== data.conversation_id) {
        state.messages = [];
        state.messagesNext = null;
      }
      state.conversationId = data.conversation_id;
      localStorage.setItem(conversationKey(state.user), String(data.conversation_id));
      // Kept like the stored messages, so loading earlier ones re-renders this turn too.
      state.messages.push({ role: 'user', content: text });
      for (const a of data.actions || []) {
        state.messages.push({ role: 'tool', tool_name: a.tool, content: JSON.stringify({ arguments: a.arguments, result: a.result }) });
      }
      state.messages.push({ role: 'assistant', content: data.reply });
      appendMessage('assistant', data.reply, data.actions || []);
      loadTasks();
    } catch (e) {
      pending.remove();
      if (e.status !== 401) {
        const div = appendMessage('error', 'Message not answered: ' + e.message);
        addRetry(div, () => sendChat(text));
      }
    } finally {
      state.chatBusy = false;
      $('chat-send').disabled = false;
    }
  }

  function submitChat(event) {
    event.preventDefault();
    const input = $('chat-input');
    const text = input.value.trim();
    if (!text || state.chatBusy) return;
    input.value = '';
    appendMessage('user', text);
    sendChat(text);
  }

  // ---------- tasks ----------

  function setTaskState(which, message) {
    $('tasks-loading').hidden = which !== 'loading';
    $('tasks-empty').hidden = which !== 'empty';
    $('tasks-error').hidden = which !== 'error';
    if (which === 'error') $('tasks-error-text').textContent = message;
  }

  // Reloads the list from the top, as many tasks as are shown now (at least one page).
  async function loadTasks() {
    const ticket = ++state.tasksRequest;
    const shown = $('task-list').children.length;
    if (!shown) setTaskState('loading');
    const limit = Math.min(MAX_PAGE, Math.max(TASK_PAGE, shown));
    try {
      const page = await authedPage('/api/tasks?status=' + encodeURIComponent(state.filter) + '&limit=' + limit);
      if (ticket !== state.tasksRequest) return;
      renderTasks(page.items, false);
      setMoreTasks(page);
    } catch (e) {
      if (ticket !== state.tasksRequest || e.status === 401) return;
      setTaskState('error', 'Could not load tasks: ' + e.message);
    }
  }

  async function loadMoreTasks() {
    const path = state.tasksNext;
    if (!path) return;
    const ticket = ++state.tasksRequest;
    const button = $('tasks-more');
    button.disabled = true;
    try {
      const page = await authedPage(path);
      if (ticket !== state.tasksRequest) return;
      renderTasks(page.items, true);
      setMoreTasks(page);
    } catch (e) {
      if (ticket !== state.tasksRequest || e.status === 401) return;
      setTaskState('error', 'Could not load more tasks: ' + e.message);
    } finally {
      button.disabled = false;
    }
  }

  function setMoreTasks(page) {
    state.tasksNext = page.next ? page.more(page.next).replace(/([?&])limit=\d+/, '$1limit=' + TASK_PAGE) : null;
    $('tasks-more').hidden = !state.tasksNext;
  }

  function renderTasks(tasks, append) {
    const list = $('task-list');
    const tpl = $('task-template');
    const items = tasks.map((task) => {
      const li = tpl.content.firstElementChild.cloneNode(true);
      li.dataset.taskId = String(task.id);
      li.classList.toggle('done', task.completed);
      const check = li.querySelector('.task-check');
      check.id = 'task-check-' + task.id;
      check.checked = task.completed;
      check.setAttribute('aria-label', (task.completed ? 'Mark as pending: ' : 'Mark as done: ') + task.title);
      check.addEventListener('change', () => toggleTask(task, check));
      const label = li.querySelector('.task-title');
      label.htmlFor = check.id;
      label.textContent = task.title;
      if (task.description) label.title = task.description;
      const edit = li.querySelector('.task-edit');
      edit.setAttribute('aria-label', 'Edit ' + task.title);
      edit.addEventListener('click', () => startEdit(li, task));
      const del = li.querySelector('.task-delete');
      del.setAttribute('aria-label', 'Delete ' + task.title);
      del.addEventListener('click', () => deleteTask(task, del));
      return li;
    });
    if (append) list.append(...items);
    else list.replaceChildren(...items);
    setTaskState(list.children.length ? 'none' : 'empty');
  }

  async function taskAction(run) {
    try {
      await run();
      loadTasks();
    } catch (e) {
      if (e.status === 401) return;
      setTaskState('error', e.message);
      loadTasks();
    }
  }

  function toggleTask(task, check) {
    check.disabled = true;
    taskAction(() => check.checked
      ? authed('POST', '/api/tasks/' + task.id + '/complete')
      : authed('PATCH', '/api/tasks/' + task.id, { completed: false }));
  }

  function deleteTask(task, button) {
    button.disabled = true;
    taskAction(() => authed('DELETE', '/api/tasks/' + task.id));
  }

  function startEdit(li, task) {
    const form = document.createElement('form');
    form.className = 'task-edit-form';
    const input = document.createElement('input');
    input.type = 'text';
    input.value = task.title;
    input.maxLength = 200;
    input.required = true;
    input.setAttribute('aria-label', 'New title for ' + task.title);
    input.dataset.testid = 'task-edit-input';
    const save = document.createElement('button');
    save.type = 'submit';
    save.className = 'btn btn-primary btn-small';
    save.textContent = 'Save';
    save.dataset.testid = 'task-save';
    const cancel = document.createElement('button');
    cancel.type = 'button';
    cancel.className = 'btn btn-small';
    cancel.textContent = 'Cancel';
    cancel.addEventListener('click', () => loadTasks());
    form.append(input, save, cancel);
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const title = input.value.trim();
      if (!title) return;
      save.disabled = true;
      taskAction(() => authed('PATCH', '/api/tasks/' + task.id, { title }));
    });
    input.addEventListener('keydown', (event) => { if (event.key === 'Escape') loadTasks(); });
    li.querySelector('.task-title').replaceWith(form);
    li.querySelector('.task-actions').hidden = true;
    input.focus();
    input.select();
  }

  function submitTask(event) {
    event.preventDefault();
    const input = $('task-title');
    const title = input.value.trim();
    if (!title) return;
    input.value = '';
    taskAction(() => authed('POST', '/api/tasks', { title }));
  }

  function setFilter(filter) {
    state.filter = filter;
    for (const b of document.querySelectorAll('.filter-btn')) {
      b.setAttribute('aria-pressed', String(b.dataset.filter === filter));
    }
    $('task-list').replaceChildren();
    state.tasksNext = null;
    $('tasks-more').hidden = true;
    loadTasks();
  }

  // ---------- wiring ----------

  function init() {
    document.documentElement.classList.remove('no-js');
    $('auth-form').addEventListener('submit', submitAuth);
    $('auth-switch').addEventListener('click', () => {
      setAuthMode(state.mode === 'login' ? 'register' : 'login');
      $('auth-error').hidden = true;
      $('auth-email').focus();
    });
    $('sign-out').addEventListener('click', signOut);
    $('banner-retry').addEventListener('click', () => { if (bannerRetry) bannerRetry(); });
    $('chat-form').addEventListener('submit', submitChat);
    $('chat-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('chat-form').requestSubmit();
      }
    });
    $('chat-new').addEventListener('click', () => { forgetConversation(); $('chat-input').focus(); });
    $('task-form').addEventListener('submit', submitTask);
    $('tasks-retry').addEventListener('click', loadTasks);
    $('tasks-more').addEventListener('click', loadMoreTasks);
    $('chat-earlier').addEventListener('click', loadEarlierMessages);
    for (const b of document.querySelectorAll('.filter-btn')) {
      b.addEventListener('click', () => setFilter(b.dataset.filter));
    }
    boot();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
})();
