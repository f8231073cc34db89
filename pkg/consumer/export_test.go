package consumer

// ReadMessage lets the external tests build a Message as the Consumer hands it to its
// handler: metadata and id read, envelope undecoded.
var ReadMessage = readMessage
