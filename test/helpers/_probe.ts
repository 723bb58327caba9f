import { startFerrymail } from './ferrymail.js';
const fm = await startFerrymail({ tls: true, startTimeoutMs: 3000, config: { listeners: [{ address: '127.0.0.1:0', mode: 'mx' },{ address: '127.0.0.1:0', mode: 'submissions' }], domains: { local: ['fm.test'] } } }).catch(e => { console.log(String(e.message).slice(0,300)); return undefined; });
