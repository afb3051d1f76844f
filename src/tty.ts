/**
 * citty decides on colours when it is first imported; when our stdout is not a terminal the
 * escape codes only pollute logs and pipes. Set NO_COLOR for that import and take it back out in
 * main.ts so ranks never inherit it.
 */
export const setNoColor = !process.stdout.isTTY && process.env.NO_COLOR === undefined
if (setNoColor) process.env.NO_COLOR = '1'
