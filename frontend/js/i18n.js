// zh-CN and English. The language comes from the browser unless the user picked one.
const zh = {
  app: 'Fieldbook 田野手记', signIn: '登录', signOut: '退出登录', email: '邮箱', password: '密码',
  signInAgain: '登录已失效，请重新登录。待同步内容已保留。', badLogin: '邮箱或密码不正确。',
  nav_capture: '记录', nav_timeline: '日志', nav_search: '搜索', nav_debrief: '复盘', nav_actions: '行动', nav_me: '我的',
  today: '今日观察日志', text: '观察内容', kind: '类型', quote: '客户原话', speaker: '说话人角色', dimension: '维度',
  tags: '标签（逗号分隔）', hypothesis: '关联假设', none: '无', photo: '拍照', attach: '附加文件', save: '保存',
  saved: '已保存，等待同步', savedSynced: '已保存', cancel: '取消', edit: '编辑', delete: '删除', confirmDelete: '确定删除这条观察记录？', editCaption: '改说明', caption: '素材说明', confirmDeleteMaterial: '确定删除这个素材？',
  kind_note: '笔记', kind_quote: '原话', kind_behaviour: '行为', kind_process: '流程', kind_pain_point: '痛点', kind_idea: '想法', kind_question: '问题',
  dim_scene: '场景', dim_words_actions: '客户的言行', dim_organisation: '客户的组织',
  pending: '待同步', pendingN: (n) => `${n} 项待同步`, photosWaitingN: (n) => `${n} 张照片未上传`, photosStalled: '上传超时，下次同步时从断点继续', allSynced: '已全部同步', lastSync: '上次同步', never: '从未',
  syncNow: '立即同步', syncing: '同步中…', offline: '离线', online: '在线', syncError: '同步出错',
  stint: '驻场调研', chooseStint: '选择驻场调研', noStints: '还没有驻场调研。', newStint: '新建驻场调研',
  title: '标题', customer: '客户', purpose: '目的', startDate: '开始日期', endDate: '结束日期', create: '创建',
  purpose_product: '实际使用场景与体验', purpose_benchmark: '先进的业务方法论', purpose_customer_success: '客户桌子上的信息', purpose_other: '其他',
  noObservations: '这一天还没有观察记录。', days: '观察日志', photos: '素材', observation: '观察记录', materials: '素材',
  search: '搜索', searchPlaceholder: '搜索观察、原话、素材…', results: (n) => `${n} 条结果`, noResults: '没有找到结果。',
  from: '从', to: '到', sort: '排序', sort_relevance: '相关度', sort_newest: '最新', sort_oldest: '最早', any: '全部', tag: '标签', author: '作者',
  insights: '洞见', evidence: '证据', noInsights: '还没有洞见。', shares: '分享链接', createShare: '创建分享链接',
  expiresDays: '有效天数', includePhotos: '包含照片', copy: '复制', copied: '已复制', revoke: '撤销', views: (n) => `${n} 次查看`,
  expires: '到期', revoked: '已撤销', active: '有效', access_debrief: '复盘', access_photo: '照片',
  actions: '改善行动', noActions: '还没有改善行动。', owner: '负责人', due: '截止', status: '状态', priority: '优先级',
  approve: '批准', reject: '驳回', requestChanges: '要求修改', comment: '评论', newAction: '新建改善行动', description: '说明',
  status_proposed: '待审批', status_approved: '已批准', status_in_progress: '进行中', status_done: '已完成', status_rejected: '已驳回',
  moveTo: '更新状态', lvl_low: '低', lvl_medium: '中', lvl_high: '高',
  sessions: '已登录的设备', thisDevice: '本设备', revokeDevice: '移除', language: '语言', account: '账户',
  sync: '同步', issues: '需要处理', conflict: '冲突', rejected: '被拒绝', server: '服务器版本', yours: '我的版本',
  keepMine: '保留我的', keepServer: '采用服务器的', retry: '重试', discard: '放弃', deletedOnServer: '已在服务器上删除',
  tooLargeToSync: '内容太大，服务器无法接收，请缩短后重新记录',
  updateReady: '新版本已就绪。', reload: '刷新', offlineReady: '离线可用',
  type_observation: '观察记录', type_day: '当日小结', type_material: '素材', type_insight: '洞见', type_action: '改善行动',
  moreFields: '原话、维度、标签', offlineSearch: '离线：在本设备上搜索', stance_supports: '支持', stance_refutes: '反驳', observedAt: '记录时间', daySummary: '当日小结', required: '必填', close: '关闭', loading: '加载中…', needOnline: '此功能需要联网。', error: '出错了',
};
const en = {
  app: 'Fieldbook', signIn: 'Sign in', signOut: 'Sign out', email: 'E-mail', password: 'Password',
  signInAgain: 'Your session has ended; sign in again. Nothing pending was lost.', badLogin: 'E-mail or password is incorrect.',
  nav_capture: 'Capture', nav_timeline: 'Log', nav_search: 'Search', nav_debrief: 'Debrief', nav_actions: 'Actions', nav_me: 'Me',
  today: "Today's observation log", text: 'Observation', kind: 'Kind', quote: 'Verbatim quote', speaker: 'Speaker role', dimension: 'Dimension',
  tags: 'Tags (comma separated)', hypothesis: 'Hypothesis', none: 'None', photo: 'Take photo', attach: 'Attach file', save: 'Save',
  saved: 'Saved, waiting to sync', savedSynced: 'Saved', cancel: 'Cancel', edit: 'Edit', delete: 'Delete', confirmDelete: 'Delete this observation?', editCaption: 'Edit caption', caption: 'Caption', confirmDeleteMaterial: 'Delete this material?',
  kind_note: 'Note', kind_quote: 'Quote', kind_behaviour: 'Behaviour', kind_process: 'Process', kind_pain_point: 'Pain point', kind_idea: 'Idea', kind_question: 'Question',
  dim_scene: 'Scene', dim_words_actions: "Customer's words and actions", dim_organisation: "Customer's organisation",
  pending: 'Pending', pendingN: (n) => `${n} pending`, photosWaitingN: (n) => `${n} photo${n === 1 ? '' : 's'} not uploaded`, photosStalled: 'the upload timed out and resumes at the next sync', allSynced: 'All synced', lastSync: 'Last sync', never: 'never',
  syncNow: 'Sync now', syncing: 'Syncing…', offline: 'Offline', online: 'Online', syncError: 'Sync error',
  stint: 'Stint', chooseStint: 'Choose a stint', noStints: 'No stints yet.', newStint: 'New stint',
  title: 'Title', customer: 'Customer', purpose: 'Purpose', startDate: 'Start date', endDate: 'End date', create: 'Create',
  purpose_product: 'Product: real usage and experience', purpose_benchmark: "Benchmark: the customer's methodology", purpose_customer_success: "Customer success: what is on the customer's desk", purpose_other: 'Other',
  noObservations: 'No observations on this day yet.', days: 'Observation log', photos: 'Materials', observation: 'Observation', materials: 'Materials',
  search: 'Search', searchPlaceholder: 'Search observations, quotes, materials…', results: (n) => `${n} results`, noResults: 'Nothing found.',
  from: 'From', to: 'To', sort: 'Sort', sort_relevance: 'Relevance', sort_newest: 'Newest', sort_oldest: 'Oldest', any: 'Any', tag: 'Tag', author: 'Author',
  insights: 'Insights', evidence: 'Evidence', noInsights: 'No insights yet.', shares: 'Share links', createShare: 'Create share link',
  expiresDays: 'Valid for (days)', includePhotos: 'Include photos', copy: 'Copy', copied: 'Copied', revoke: 'Revoke', views: (n) => `${n} views`,
  expires: 'Expires', revoked: 'Revoked', active: 'Active', access_debrief: 'Debrief', access_photo: 'Photo',
  actions: 'Improvement actions', noActions: 'No actions yet.', owner: 'Owner', due: 'Due', status: 'Status', priority: 'Priority',
  approve: 'Approve', reject: 'Reject', requestChanges: 'Request changes', comment: 'Comment', newAction: 'New action', description: 'Description',
  status_proposed: 'Proposed', status_approved: 'Approved', status_in_progress: 'In progress', status_done: 'Done', status_rejected: 'Rejected',
  moveTo: 'Update status', lvl_low: 'low', lvl_medium: 'medium', lvl_high: 'high',
  sessions: 'Signed-in devices', thisDevice: 'This device', revokeDevice: 'Sign out device', language: 'Language', account: 'Account',
  sync: 'Sync', issues: 'Needs you', conflict: 'Conflict', rejected: 'Rejected', server: 'Server version', yours: 'Your version',
  keepMine: 'Keep mine', keepServer: 'Use server version', retry: 'Retry', discard: 'Discard', deletedOnServer: 'Deleted on the server',
  tooLargeToSync: 'Too large for the server to accept; shorten it and record it again',
  updateReady: 'A new version is ready.', reload: 'Reload', offlineReady: 'Works offline',
  type_observation: 'Observation', type_day: 'Day summary', type_material: 'Material', type_insight: 'Insight', type_action: 'Action',
  moreFields: 'Quote, dimension, tags', offlineSearch: 'Offline: searching this device', stance_supports: 'Supports', stance_refutes: 'Refutes', observedAt: 'Recorded at', daySummary: 'Summary of the day', required: 'required', close: 'Close', loading: 'Loading…', needOnline: 'This needs a network connection.', error: 'Something went wrong',
};
const DICTS = { 'zh-CN': zh, en };

export function detect() {
  const saved = localStorage.getItem('fieldbook.lang');
  if (saved && DICTS[saved]) return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || 'en'];
  for (const l of langs) {
    if (/^zh/i.test(l)) return 'zh-CN';
    if (/^en/i.test(l)) return 'en';
  }
  return 'en';
}

let lang = detect();
export function getLang() { return lang; }
export function setLang(l) {
  lang = DICTS[l] ? l : 'en';
  localStorage.setItem('fieldbook.lang', lang);
  document.documentElement.lang = lang;
}
export function t(key, ...args) {
  const v = (DICTS[lang] && DICTS[lang][key]) ?? en[key] ?? key;
  return typeof v === 'function' ? v(...args) : v;
}
export function fmtTime(iso) {
  if (!iso) return t('never');
  try { return new Date(iso).toLocaleString(lang, { dateStyle: 'short', timeStyle: 'short' }); } catch { return iso; }
}
document.documentElement.lang = lang;
