import { defineCommand } from 'citty'
export default defineCommand({ meta: { name: 'plugins', description: 'TODO' }, run() { throw new Error('not yet') } })
