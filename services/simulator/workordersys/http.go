package workordersys

// maxBody bounds a request body: a work order is a few hundred bytes.
const maxBody = 1 << 20
