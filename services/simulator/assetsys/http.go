package assetsys

// maxBody bounds a request body: a full group of assets fits many times over.
const maxBody = 1 << 20
