import { defineCommand } from 'citty'
export default defineCommand({ meta: { name: 'info', description: 'TODO' }, run() { throw new Error('not yet') } })
